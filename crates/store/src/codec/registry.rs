//! Encoding of the registry's records, in the same versioned format as
//! the broker's (see the parent module).

use std::collections::BTreeMap;

use super::{DecodeError, Reader, Writer};
use crate::registry::{
    CertificateRecord, CertificateStatus, EnrollmentTokenRecord, OwnershipTokenRecord,
    PolicyRecord, PolicyVersionRecord, ProvisioningTemplateRecord, ThingGroupRecord, ThingRecord,
    ThingTypeRecord,
};

fn write_map(w: &mut Writer, map: &BTreeMap<String, String>) {
    w.len(map.len());
    for (k, v) in map {
        w.str(k);
        w.str(v);
    }
}

fn read_map(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<BTreeMap<String, String>, DecodeError> {
    let (n, _) = r.count(field, 8)?;
    let mut map = BTreeMap::new();
    for _ in 0..n {
        let k = r.string(field)?;
        let v = r.string(field)?;
        map.insert(k, v);
    }
    Ok(map)
}

fn write_list(w: &mut Writer, list: &[String]) {
    w.len(list.len());
    for item in list {
        w.str(item);
    }
}

fn read_list(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<String>, DecodeError> {
    let (n, cap) = r.count(field, 4)?;
    let mut list = Vec::with_capacity(cap);
    for _ in 0..n {
        list.push(r.string(field)?);
    }
    Ok(list)
}

fn decode<T>(
    buf: &[u8],
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut r = Reader::record(buf)?;
    let value = read(&mut r)?;
    r.finish()?;
    Ok(value)
}

pub(crate) fn encode_thing(t: &ThingRecord) -> Vec<u8> {
    let mut w = Writer::record();
    w.str(&t.name);
    w.opt(t.thing_type.as_deref(), Writer::str);
    write_map(&mut w, &t.attributes);
    write_list(&mut w, &t.groups);
    w.u64(t.created_ms);
    w.u64(t.updated_ms);
    w.u64(t.version);
    w.finish()
}

pub(crate) fn decode_thing(buf: &[u8]) -> Result<ThingRecord, DecodeError> {
    decode(buf, |r| {
        Ok(ThingRecord {
            name: r.string("name")?,
            thing_type: r.opt("thing_type", |r| r.string("thing_type"))?,
            attributes: read_map(r, "attributes")?,
            groups: read_list(r, "groups")?,
            created_ms: r.u64("created_ms")?,
            updated_ms: r.u64("updated_ms")?,
            version: r.u64("version")?,
        })
    })
}

pub(crate) fn encode_thing_type(t: &ThingTypeRecord) -> Vec<u8> {
    let mut w = Writer::record();
    w.str(&t.name);
    w.opt(t.description.as_deref(), Writer::str);
    w.bool(t.deprecated);
    w.u64(t.created_ms);
    w.finish()
}

pub(crate) fn decode_thing_type(buf: &[u8]) -> Result<ThingTypeRecord, DecodeError> {
    decode(buf, |r| {
        Ok(ThingTypeRecord {
            name: r.string("name")?,
            description: r.opt("description", |r| r.string("description"))?,
            deprecated: r.bool("deprecated")?,
            created_ms: r.u64("created_ms")?,
        })
    })
}

pub(crate) fn encode_thing_group(g: &ThingGroupRecord) -> Vec<u8> {
    let mut w = Writer::record();
    w.str(&g.name);
    w.opt(g.parent.as_deref(), Writer::str);
    w.opt(g.description.as_deref(), Writer::str);
    write_map(&mut w, &g.attributes);
    w.u64(g.created_ms);
    w.u64(g.updated_ms);
    w.u64(g.version);
    w.finish()
}

pub(crate) fn decode_thing_group(buf: &[u8]) -> Result<ThingGroupRecord, DecodeError> {
    decode(buf, |r| {
        Ok(ThingGroupRecord {
            name: r.string("name")?,
            parent: r.opt("parent", |r| r.string("parent"))?,
            description: r.opt("description", |r| r.string("description"))?,
            attributes: read_map(r, "attributes")?,
            created_ms: r.u64("created_ms")?,
            updated_ms: r.u64("updated_ms")?,
            version: r.u64("version")?,
        })
    })
}

fn status_code(s: CertificateStatus) -> u8 {
    match s {
        CertificateStatus::Active => 0,
        CertificateStatus::Inactive => 1,
        CertificateStatus::Revoked => 2,
    }
}

pub(crate) fn encode_certificate(c: &CertificateRecord) -> Vec<u8> {
    let mut w = Writer::record();
    w.str(&c.serial_hex);
    w.opt(c.thing.as_deref(), Writer::str);
    w.u8(status_code(c.status));
    w.str(&c.common_name);
    w.str(&c.certificate_pem);
    w.u64(c.not_before_ms);
    w.u64(c.not_after_ms);
    w.u64(c.created_ms);
    w.u64(c.updated_ms);
    w.opt(c.replaced_by.as_deref(), Writer::str);
    w.opt(c.overlap_until_ms, Writer::u64);
    w.finish()
}

pub(crate) fn decode_certificate(buf: &[u8]) -> Result<CertificateRecord, DecodeError> {
    decode(buf, |r| {
        let serial_hex = r.string("serial_hex")?;
        let thing = r.opt("thing", |r| r.string("thing"))?;
        let at = r.pos;
        let status = match r.u8("status")? {
            0 => CertificateStatus::Active,
            1 => CertificateStatus::Inactive,
            2 => CertificateStatus::Revoked,
            v => return Err(r.invalid("status", at, v.into())),
        };
        Ok(CertificateRecord {
            serial_hex,
            thing,
            status,
            common_name: r.string("common_name")?,
            certificate_pem: r.string("certificate_pem")?,
            not_before_ms: r.u64("not_before_ms")?,
            not_after_ms: r.u64("not_after_ms")?,
            created_ms: r.u64("created_ms")?,
            updated_ms: r.u64("updated_ms")?,
            replaced_by: r.opt("replaced_by", |r| r.string("replaced_by"))?,
            overlap_until_ms: r.opt("overlap_until_ms", |r| r.u64("overlap_until_ms"))?,
        })
    })
}

pub(crate) fn encode_policy(p: &PolicyRecord) -> Vec<u8> {
    let mut w = Writer::record();
    w.str(&p.name);
    w.len(p.versions.len());
    for (version, v) in &p.versions {
        w.u32(*version);
        w.str(&v.document);
        w.u64(v.created_ms);
    }
    w.u32(p.default_version);
    w.u32(p.next_version);
    w.u64(p.created_ms);
    w.u64(p.updated_ms);
    w.finish()
}

pub(crate) fn decode_policy(buf: &[u8]) -> Result<PolicyRecord, DecodeError> {
    decode(buf, |r| {
        let name = r.string("name")?;
        let (n, _) = r.count("versions", 16)?;
        let mut versions = BTreeMap::new();
        for _ in 0..n {
            let version = r.u32("version")?;
            let document = r.string("document")?;
            let created_ms = r.u64("version created_ms")?;
            versions.insert(
                version,
                PolicyVersionRecord {
                    document,
                    created_ms,
                },
            );
        }
        let at = r.pos;
        let default_version = r.u32("default_version")?;
        if !versions.contains_key(&default_version) {
            return Err(r.invalid("default_version", at, default_version.into()));
        }
        Ok(PolicyRecord {
            name,
            versions,
            default_version,
            next_version: r.u32("next_version")?,
            created_ms: r.u64("created_ms")?,
            updated_ms: r.u64("updated_ms")?,
        })
    })
}

pub(crate) fn encode_enrollment_token(t: &EnrollmentTokenRecord) -> Vec<u8> {
    let mut w = Writer::record();
    w.str(&t.thing);
    w.u64(t.created_ms);
    w.u64(t.expires_ms);
    w.opt(t.used_ms, Writer::u64);
    w.opt(t.certificate.as_deref(), Writer::str);
    w.finish()
}

pub(crate) fn decode_enrollment_token(buf: &[u8]) -> Result<EnrollmentTokenRecord, DecodeError> {
    decode(buf, |r| {
        Ok(EnrollmentTokenRecord {
            thing: r.string("thing")?,
            created_ms: r.u64("created_ms")?,
            expires_ms: r.u64("expires_ms")?,
            used_ms: r.opt("used_ms", |r| r.u64("used_ms"))?,
            certificate: r.opt("certificate", |r| r.string("certificate"))?,
        })
    })
}

pub(crate) fn encode_ownership_token(t: &OwnershipTokenRecord) -> Vec<u8> {
    let mut w = Writer::record();
    w.str(&t.serial_hex);
    w.u64(t.created_ms);
    w.u64(t.expires_ms);
    w.finish()
}

pub(crate) fn decode_ownership_token(buf: &[u8]) -> Result<OwnershipTokenRecord, DecodeError> {
    decode(buf, |r| {
        Ok(OwnershipTokenRecord {
            serial_hex: r.string("serial_hex")?,
            created_ms: r.u64("created_ms")?,
            expires_ms: r.u64("expires_ms")?,
        })
    })
}

pub(crate) fn encode_template(t: &ProvisioningTemplateRecord) -> Vec<u8> {
    let mut w = Writer::record();
    w.str(&t.name);
    w.str(&t.document);
    w.u64(t.created_ms);
    w.u64(t.updated_ms);
    w.finish()
}

pub(crate) fn decode_template(buf: &[u8]) -> Result<ProvisioningTemplateRecord, DecodeError> {
    decode(buf, |r| {
        Ok(ProvisioningTemplateRecord {
            name: r.string("name")?,
            document: r.string("document")?,
            created_ms: r.u64("created_ms")?,
            updated_ms: r.u64("updated_ms")?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn records_round_trip() {
        let thing = ThingRecord {
            name: "lamp-1".into(),
            thing_type: Some("streetlight".into()),
            attributes: map(&[("district", "north"), ("model", "L7")]),
            groups: vec!["north".into(), "pilot".into()],
            created_ms: 1,
            updated_ms: 2,
            version: 3,
        };
        assert_eq!(decode_thing(&encode_thing(&thing)).unwrap(), thing);

        let group = ThingGroupRecord {
            name: "north".into(),
            parent: Some("city".into()),
            description: None,
            attributes: map(&[("zone", "1")]),
            created_ms: 5,
            updated_ms: 6,
            version: 1,
        };
        assert_eq!(
            decode_thing_group(&encode_thing_group(&group)).unwrap(),
            group
        );

        let thing_type = ThingTypeRecord {
            name: "streetlight".into(),
            description: Some("LED lamps".into()),
            deprecated: true,
            created_ms: 9,
        };
        assert_eq!(
            decode_thing_type(&encode_thing_type(&thing_type)).unwrap(),
            thing_type
        );

        let cert = CertificateRecord {
            serial_hex: "4a0b".into(),
            thing: Some("lamp-1".into()),
            status: CertificateStatus::Inactive,
            common_name: "lamp-1".into(),
            certificate_pem: "-----BEGIN CERTIFICATE-----".into(),
            not_before_ms: 10,
            not_after_ms: 20,
            created_ms: 11,
            updated_ms: 12,
            replaced_by: Some("4a0c".into()),
            overlap_until_ms: Some(15),
        };
        assert_eq!(
            decode_certificate(&encode_certificate(&cert)).unwrap(),
            cert
        );

        let policy = PolicyRecord {
            name: "p".into(),
            versions: BTreeMap::from([
                (
                    1,
                    PolicyVersionRecord {
                        document: "{}".into(),
                        created_ms: 1,
                    },
                ),
                (
                    3,
                    PolicyVersionRecord {
                        document: "{ }".into(),
                        created_ms: 2,
                    },
                ),
            ]),
            default_version: 3,
            next_version: 4,
            created_ms: 1,
            updated_ms: 2,
        };
        assert_eq!(decode_policy(&encode_policy(&policy)).unwrap(), policy);

        let token = EnrollmentTokenRecord {
            thing: "lamp-1".into(),
            created_ms: 1,
            expires_ms: 2,
            used_ms: Some(3),
            certificate: Some("4a0b".into()),
        };
        assert_eq!(
            decode_enrollment_token(&encode_enrollment_token(&token)).unwrap(),
            token
        );
        let ownership = OwnershipTokenRecord {
            serial_hex: "4a0b".into(),
            created_ms: 1,
            expires_ms: 2,
        };
        assert_eq!(
            decode_ownership_token(&encode_ownership_token(&ownership)).unwrap(),
            ownership
        );
        let template = ProvisioningTemplateRecord {
            name: "fleet".into(),
            document: "{}".into(),
            created_ms: 1,
            updated_ms: 2,
        };
        assert_eq!(
            decode_template(&encode_template(&template)).unwrap(),
            template
        );
    }

    #[test]
    fn corrupt_records_are_errors() {
        let cert = CertificateRecord {
            serial_hex: "01".into(),
            thing: None,
            status: CertificateStatus::Active,
            common_name: "x".into(),
            certificate_pem: String::new(),
            not_before_ms: 0,
            not_after_ms: 0,
            created_ms: 0,
            updated_ms: 0,
            replaced_by: None,
            overlap_until_ms: None,
        };
        let mut bytes = encode_certificate(&cert);
        // version byte, serial (4 + 2), thing tag (1): then the status.
        bytes[8] = 7;
        assert!(matches!(
            decode_certificate(&bytes),
            Err(DecodeError::InvalidValue {
                field: "status",
                ..
            })
        ));
        let bytes = encode_certificate(&cert);
        for cut in 0..bytes.len() {
            assert!(decode_certificate(&bytes[..cut]).is_err());
        }
        let policy = PolicyRecord {
            name: "p".into(),
            versions: BTreeMap::new(),
            default_version: 1,
            next_version: 2,
            created_ms: 0,
            updated_ms: 0,
        };
        assert!(decode_policy(&encode_policy(&policy)).is_err());
    }
}

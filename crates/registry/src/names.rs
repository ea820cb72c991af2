//! Validation of names and attributes, following the AWS IoT API
//! reference (CreateThing, CreateThingGroup, CreateThingType,
//! CreateProvisioningTemplate) so that names valid on AWS are valid here.

use std::collections::BTreeMap;

use crate::error::RegistryError;

/// Thing, thing type and thing group names: `[a-zA-Z0-9:_-]{1,128}`.
const MAX_NAME: usize = 128;
/// Attribute names: `[a-zA-Z0-9_.,@/:#-]{1,128}`.
const MAX_ATTRIBUTE_NAME: usize = 128;
/// Attribute values: `[a-zA-Z0-9_.,@/:#=\[\]-]{0,800}`.
const MAX_ATTRIBUTE_VALUE: usize = 800;
/// AWS allows 50 attributes on a thing with a type (3 without); civitas
/// allows 50 either way.
pub(crate) const MAX_ATTRIBUTES: usize = 50;
/// A thing belongs to at most 10 groups directly.
pub(crate) const MAX_GROUPS_PER_THING: usize = 10;
/// Thing groups nest at most 7 levels deep.
pub(crate) const MAX_GROUP_DEPTH: usize = 7;
const MAX_DESCRIPTION: usize = 2028;
/// Provisioning template names: `[0-9A-Za-z_-]{1,36}`.
const MAX_TEMPLATE_NAME: usize = 36;

fn check(
    kind: &'static str,
    name: &str,
    max: usize,
    allowed: impl Fn(u8) -> bool,
    alphabet: &str,
) -> Result<(), RegistryError> {
    let invalid = |reason: String| RegistryError::InvalidName {
        kind,
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("must not be empty".into()));
    }
    if name.len() > max {
        return Err(invalid(format!("must be at most {max} characters")));
    }
    if !name.bytes().all(allowed) {
        return Err(invalid(format!("may contain only {alphabet}")));
    }
    Ok(())
}

fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-')
}

pub(crate) fn thing_name(name: &str) -> Result<(), RegistryError> {
    check(
        "thing",
        name,
        MAX_NAME,
        name_byte,
        "letters, digits and : _ -",
    )
}

pub(crate) fn thing_type_name(name: &str) -> Result<(), RegistryError> {
    check(
        "thing type",
        name,
        MAX_NAME,
        name_byte,
        "letters, digits and : _ -",
    )
}

pub(crate) fn thing_group_name(name: &str) -> Result<(), RegistryError> {
    check(
        "thing group",
        name,
        MAX_NAME,
        name_byte,
        "letters, digits and : _ -",
    )
}

pub(crate) fn template_name(name: &str) -> Result<(), RegistryError> {
    check(
        "provisioning template",
        name,
        MAX_TEMPLATE_NAME,
        |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'),
        "letters, digits and _ -",
    )
}

pub(crate) fn description(text: &str) -> Result<(), RegistryError> {
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(RegistryError::invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(RegistryError::invalid(
            "description",
            "must not contain control characters",
        ));
    }
    Ok(())
}

pub(crate) fn attributes(map: &BTreeMap<String, String>) -> Result<(), RegistryError> {
    if map.len() > MAX_ATTRIBUTES {
        return Err(RegistryError::invalid(
            "attributes",
            format!("at most {MAX_ATTRIBUTES} are allowed, {} given", map.len()),
        ));
    }
    for (name, value) in map {
        let what = || format!("attribute {name:?}");
        if name.is_empty() || name.len() > MAX_ATTRIBUTE_NAME {
            return Err(RegistryError::invalid(
                what(),
                format!("name must be 1 to {MAX_ATTRIBUTE_NAME} characters"),
            ));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.,@/:#-".contains(&b))
        {
            return Err(RegistryError::invalid(
                what(),
                "name may contain only letters, digits and _ . , @ / : # -",
            ));
        }
        if value.len() > MAX_ATTRIBUTE_VALUE {
            return Err(RegistryError::invalid(
                what(),
                format!("value must be at most {MAX_ATTRIBUTE_VALUE} characters"),
            ));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.,@/:#=[]-".contains(&b))
        {
            return Err(RegistryError::invalid(
                what(),
                "value may contain only letters, digits and _ . , @ / : # = [ ] -",
            ));
        }
    }
    Ok(())
}

/// The canonical hex spelling of a serial given in any accepted spelling.
pub(crate) fn serial(text: &str) -> Result<String, RegistryError> {
    Ok(civitas_pki::normalize_serial_hex(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_aws_alphabet() {
        assert!(thing_name("lamp-7:north_1").is_ok());
        assert!(thing_name(&"a".repeat(128)).is_ok());
        for bad in ["", "a b", "a.b", "a/b", "é"] {
            assert!(thing_name(bad).is_err(), "{bad:?}");
        }
        assert!(thing_name(&"a".repeat(129)).is_err());
        assert_eq!(
            thing_group_name("x y").unwrap_err().to_string(),
            "invalid thing group name \"x y\": may contain only letters, digits and : _ -"
        );
        assert!(template_name(&"t".repeat(36)).is_ok());
        assert!(template_name(&"t".repeat(37)).is_err());
        assert!(template_name("a:b").is_err());
    }

    #[test]
    fn attributes_are_checked() {
        let ok = BTreeMap::from([("district".to_owned(), "north/7".to_owned())]);
        assert!(attributes(&ok).is_ok());
        let empty_value = BTreeMap::from([("k".to_owned(), String::new())]);
        assert!(attributes(&empty_value).is_ok());
        let bad_value = BTreeMap::from([("k".to_owned(), "a b".to_owned())]);
        assert_eq!(
            attributes(&bad_value).unwrap_err().to_string(),
            "attribute \"k\": value may contain only letters, digits and _ . , @ / : # = [ ] -"
        );
        let bad_name = BTreeMap::from([("k=".to_owned(), "v".to_owned())]);
        assert!(attributes(&bad_name).is_err());
        let many: BTreeMap<String, String> =
            (0..51).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert!(attributes(&many).is_err());
    }
}

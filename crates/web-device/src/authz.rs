//! Policy checks for one request, by the same authority and policies as
//! the device's MQTT connection.
//!
//! The device's certificate serial and CommonName (as client id) are
//! resolved on every request rather than once per TLS connection: a
//! keep-alive connection must not outlive a revocation or a policy
//! change, and resolving costs a registry read and a few pattern
//! compilations. As over MQTT, `iot:Connect` on the client id is required
//! first, so a device barred from connecting cannot use HTTPS instead.

use civitas_broker::{Authority, Refusal};
use civitas_policy::{Action, ResolvedPolicies};

/// Who is asking: read from the verified client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Device {
    /// The certificate's CommonName: the thing name, and the client id
    /// policies are resolved for.
    pub thing: String,
    /// Lower-case hex, as the registry keys certificates.
    pub serial: String,
}

/// The policies in force for `device` right now.
pub(crate) fn resolve(
    authority: &dyn Authority,
    device: &Device,
) -> Result<ResolvedPolicies, Refusal> {
    let (policies, context) = authority.connection_policies(&device.serial, &device.thing)?;
    let resolved = ResolvedPolicies::resolve(&policies, &context);
    let decision = resolved.check(Action::Connect, &device.thing);
    if !decision.allowed {
        return Err(Refusal(format!("iot:Connect: {decision}")));
    }
    Ok(resolved)
}

/// The resource a shadow action is checked on: `thing` or `thing/shadow`.
pub(crate) fn shadow_resource(thing: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{thing}/{name}"),
        None => thing.to_string(),
    }
}

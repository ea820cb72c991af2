//! Brokers whose services and authority are built over the broker's own
//! store and the test CA, as the device registry needs both: the test
//! supplies the builder, so testkit does not depend on the registry (which
//! depends on testkit for its own tests).

use std::sync::Arc;

use civitas_broker::{AuthMode, Authority, Authorization, TopicService};
use civitas_store::Store;

use crate::pki::TestPki;
use crate::server::{TestBroker, TestBrokerOptions};

/// What a broker is assembled with.
#[derive(Default)]
pub struct Assembly {
    pub services: Vec<Arc<dyn TopicService>>,
    /// Authorizes the mutual-TLS listeners by its policies.
    pub authority: Option<Arc<dyn Authority>>,
}

/// Builds an [`Assembly`] over the broker's store and the test CA; called
/// again at every restart.
pub type AssemblyFactory = Arc<dyn Fn(&Store, &TestPki) -> anyhow::Result<Assembly> + Send + Sync>;

impl TestBroker {
    /// Start a broker assembled by `factory`. Mutual-TLS listeners without
    /// an explicit authorization are authorized by policies, so the
    /// factory must supply an authority unless the options say otherwise.
    pub async fn start_assembled(
        mut options: TestBrokerOptions,
        factory: AssemblyFactory,
    ) -> anyhow::Result<TestBroker> {
        crate::init();
        for l in &mut options.config.listeners {
            if l.auth == AuthMode::Mtls && l.authorization.is_none() {
                l.authorization = Some(Authorization::Policies);
            }
        }
        let mut broker = TestBroker::prepare(options, Vec::new(), None)?;
        broker.assembly = Some(factory);
        broker.launch().await?;
        Ok(broker)
    }
}

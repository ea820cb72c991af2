//! The shadow service plugged into the broker as a topic service: the
//! broker hands it every authorized PUBLISH on a shadow request topic and
//! publishes its replies as broker messages.
//!
//! The broker queues a connection's requests and handles them one at a
//! time, so AWS's "10 requests in flight" is counted from the moment a
//! request is queued: `admit` takes the in-flight ticket (or answers 429
//! at once) and the broker holds it until `handle` has returned.
//!
//! The dependency points from the shadow service to the broker, not the
//! other way: the broker knows topic services only through its trait, so
//! it stays free of shadows, provisioning and whatever comes next.

use bytes::Bytes;
use civitas_broker::{ServiceReply, ServiceRequest, Ticket, TopicService};
use civitas_mqtt::QoS;

use crate::outcome::Reply;
use crate::service::{Requester, ShadowService};
use crate::topic::ShadowTopic;

/// [`ShadowService`] as a broker [`TopicService`]:
/// `Broker::with_service(Arc::new(ShadowTopicService::new(shadows)))`.
#[derive(Debug, Clone)]
pub struct ShadowTopicService {
    shadows: ShadowService,
}

impl ShadowTopicService {
    pub fn new(shadows: ShadowService) -> ShadowTopicService {
        ShadowTopicService { shadows }
    }

    /// The service behind the topics, shared with the HTTPS API.
    pub fn shadows(&self) -> &ShadowService {
        &self.shadows
    }
}

impl TopicService for ShadowTopicService {
    fn handles(&self, topic: &str) -> bool {
        ShadowTopic::parse(topic).is_some()
    }

    fn admit(&self, request: &ServiceRequest) -> Result<Ticket, Vec<ServiceReply>> {
        match self
            .shadows
            .begin_request(&Requester::new(&*request.client_id))
        {
            Some(in_flight) => Ok(Ticket::new(in_flight)),
            None => Err(to_service_replies(
                self.shadows
                    .reject_too_many(&request.topic, &request.payload),
            )),
        }
    }

    fn handle(&self, request: ServiceRequest) -> Vec<ServiceReply> {
        // The broker holds the ticket from `admit` until this returns.
        to_service_replies(
            self.shadows
                .handle_counted(&request.topic, &request.payload),
        )
    }
}

fn to_service_replies(replies: Option<Vec<Reply>>) -> Vec<ServiceReply> {
    replies
        .unwrap_or_default()
        .into_iter()
        // Shadow documents are for anyone allowed to subscribe (an app
        // watching a device's delta), as on AWS. QoS 1 is capped by each
        // subscription's, so a device that subscribed with QoS 1 gets its
        // answers reliably.
        .map(|r| ServiceReply::to_subscribers(r.topic, Bytes::from(r.payload), QoS::AtLeastOnce))
        .collect()
}

//! The requests: publish to a topic and get, update or delete a device
//! shadow, each checked against the device's policies first.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use civitas_broker::{Authority, BrokerHandle};
use civitas_mqtt::{PublishProperties, QoS, validate_topic_name};
use civitas_policy::{Action, ResolvedPolicies};
use civitas_shadow::{Reply, Requester, ShadowError, ShadowService, ShadowTopic};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use hyper::{Method, Request, Response, StatusCode};

use crate::authz::{self, Device};
use crate::config::Limits;
use crate::response::{self, Body};
use crate::target::{Target, query_pairs};

/// Everything a request needs; shared by all connections.
#[derive(Debug)]
pub(crate) struct Api {
    pub authority: Arc<dyn Authority>,
    pub broker: BrokerHandle,
    pub shadows: Option<ShadowService>,
    pub limits: Limits,
}

/// Why a body was not read.
enum BodyError {
    TooLarge,
    Unreadable,
}

impl Api {
    pub(crate) async fn handle(
        self: Arc<Self>,
        device: &Device,
        request: Request<Incoming>,
        trace: &str,
    ) -> Response<Body> {
        let target = match Target::parse(request.uri().path()) {
            Ok(target) => target,
            Err(e) => return response::bad_request(&format!("Invalid path: {e}"), trace),
        };
        let query = match query_pairs(request.uri().query()) {
            Ok(query) => query,
            Err(e) => return response::bad_request(&format!("Invalid query: {e}"), trace),
        };
        match (request.method().clone(), target) {
            (Method::POST, Target::Topic(topic)) => {
                self.publish(device, topic, &query, request, trace).await
            }
            (method, Target::Shadow { thing })
                if matches!(method, Method::GET | Method::POST | Method::DELETE) =>
            {
                self.shadow(device, method, thing, &query, request, trace)
                    .await
            }
            (_, Target::Topic(_) | Target::Shadow { .. }) => response::method_not_allowed(trace),
            (_, Target::Unknown) => response::not_found(trace),
        }
    }

    /// `POST /topics/{topic}`: as an MQTT PUBLISH from the device.
    async fn publish(
        &self,
        device: &Device,
        topic: String,
        query: &[(String, String)],
        request: Request<Incoming>,
        trace: &str,
    ) -> Response<Body> {
        let qos = match param(query, "qos") {
            None | Some("0") => QoS::AtMostOnce,
            Some("1") => QoS::AtLeastOnce,
            Some(_) => return response::bad_request("qos must be 0 or 1", trace),
        };
        let retain = match param(query, "retain") {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return response::bad_request("retain must be true or false", trace),
        };
        if let Err(e) = validate_topic_name(&topic) {
            return response::bad_request(&format!("Invalid topic: {e}"), trace);
        }
        let payload = match self.read_body(request).await {
            Ok(payload) => payload,
            Err(BodyError::TooLarge) => return response::too_large(trace),
            Err(BodyError::Unreadable) => {
                return response::bad_request("The request body could not be read", trace);
            }
        };
        let Some(policies) = self.policies(device, trace) else {
            return response::forbidden(trace);
        };
        let allowed = policies.allows(Action::Publish, &topic)
            && (!retain || policies.allows(Action::RetainPublish, &topic));
        if !allowed {
            tracing::debug!(thing = %device.thing, %topic, retain, trace, "publish denied by policy");
            return response::forbidden(trace);
        }
        // A shadow request published over HTTPS is answered as over MQTT.
        if let Some(shadows) = &self.shadows
            && ShadowTopic::parse(&topic).is_some()
        {
            let shadows = shadows.clone();
            let (topic, payload, requester) = (
                topic.clone(),
                payload.clone(),
                Requester::new(&device.thing),
            );
            let replies = tokio::task::spawn_blocking(move || {
                shadows.handle_mqtt(&topic, &payload, &requester)
            })
            .await;
            match replies {
                Ok(replies) => self.publish_replies(&replies.unwrap_or_default()),
                Err(e) => {
                    tracing::error!(error = %e, trace, "shadow request failed");
                    return internal(trace);
                }
            }
        }
        // As the device, so that rules see its client id (and can verify
        // its signature) and the command audit names it.
        match self.broker.publish_from(
            &device.thing,
            &topic,
            payload,
            qos,
            retain,
            PublishProperties::default(),
        ) {
            Ok(_) => response::ok(trace),
            Err(e) => response::unavailable(&e.to_string(), trace),
        }
    }

    /// `GET|POST|DELETE /things/{thing}/shadow[?name=NAME]`.
    async fn shadow(
        &self,
        device: &Device,
        method: Method,
        thing: String,
        query: &[(String, String)],
        request: Request<Incoming>,
        trace: &str,
    ) -> Response<Body> {
        let Some(shadows) = self.shadows.clone() else {
            return response::unavailable("The shadow service is not running", trace);
        };
        let name = param(query, "name").map(str::to_string);
        let action = match method {
            Method::GET => Action::GetThingShadow,
            Method::POST => Action::UpdateThingShadow,
            _ => Action::DeleteThingShadow,
        };
        let payload = if method == Method::POST {
            match self.read_body(request).await {
                Ok(payload) => payload,
                Err(BodyError::TooLarge) => {
                    return response::shadow_error(&ShadowError::PayloadTooLarge, now_secs());
                }
                Err(BodyError::Unreadable) => {
                    return response::bad_request("The request body could not be read", trace);
                }
            }
        } else {
            Bytes::new()
        };
        let Some(policies) = self.policies(device, trace) else {
            return response::forbidden(trace);
        };
        let resource = authz::shadow_resource(&thing, name.as_deref());
        if !policies.allows(action, &resource) {
            tracing::debug!(thing = %device.thing, shadow = %resource, %action, trace, "shadow request denied by policy");
            return response::forbidden(trace);
        }
        let outcome = tokio::task::spawn_blocking(move || {
            let name = name.as_deref();
            match action {
                Action::GetThingShadow => {
                    shadows.get(&thing, name).map(|d| (d.to_json(None), None))
                }
                Action::UpdateThingShadow => shadows
                    .update(&thing, name, &payload)
                    .map(|o| (o.accepted.clone(), Some(o.replies()))),
                _ => shadows
                    .delete(&thing, name)
                    .map(|o| (o.accepted.clone(), Some(o.replies()))),
            }
        })
        .await;
        match outcome {
            Ok(Ok((document, replies))) => {
                // AWS tells MQTT subscribers of a change made over HTTPS.
                if let Some(replies) = replies {
                    self.publish_replies(&replies);
                }
                response::json(StatusCode::OK, &document)
            }
            Ok(Err(e)) => response::shadow_error(&e, now_secs()),
            Err(e) => {
                tracing::error!(error = %e, trace, "shadow request failed");
                internal(trace)
            }
        }
    }

    fn policies(&self, device: &Device, trace: &str) -> Option<ResolvedPolicies> {
        match authz::resolve(&*self.authority, device) {
            Ok(policies) => Some(policies),
            Err(refusal) => {
                tracing::debug!(thing = %device.thing, serial = %device.serial, reason = %refusal.0, trace, "request refused");
                None
            }
        }
    }

    fn publish_replies(&self, replies: &[Reply]) {
        for reply in replies {
            let payload = Bytes::from(reply.payload.clone());
            if let Err(e) = self.broker.publish(
                &reply.topic,
                payload,
                QoS::AtLeastOnce,
                false,
                PublishProperties::default(),
            ) {
                tracing::warn!(topic = %reply.topic, error = %e, "shadow reply not published");
            }
        }
    }

    async fn read_body(&self, request: Request<Incoming>) -> Result<Bytes, BodyError> {
        let max = self.limits.max_payload_bytes;
        // Refuse a declared oversize body before reading any of it.
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(BodyError::TooLarge);
        }
        match Limited::new(request.into_body(), max).collect().await {
            Ok(body) => Ok(body.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
            Err(_) => Err(BodyError::Unreadable),
        }
    }
}

fn param<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn internal(trace: &str) -> Response<Body> {
    response::message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal Failure",
        Some("InternalFailureException"),
        trace,
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

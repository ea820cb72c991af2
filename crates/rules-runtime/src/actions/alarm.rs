//! `cloudwatchAlarm` (alias `alarm`): raise or clear a monitor alarm.
//!
//! AWS fields, all templates: `alarmName`, `stateValue` and
//! `stateReason`. `stateValue` decides: `ALARM` raises the alarm with the
//! reason as its message, `OK` clears it, `INSUFFICIENT_DATA` leaves it as
//! it is. The condition is usually a template over the message, e.g.
//! `${CASE WHEN power_w > 150 THEN 'ALARM' ELSE 'OK' END}`.

use civitas_rules::Json;
use serde::{Deserialize, Serialize};

use super::{ActionError, Prepare, params, template};
use crate::document::DocumentError;
use crate::template::Template;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Params {
    alarm_name: String,
    state_value: String,
    state_reason: String,
    #[allow(dead_code)]
    role_arn: Option<String>,
}

#[derive(Debug)]
pub struct AlarmSpec {
    pub alarm_name: Template,
    state_value: Template,
    state_reason: Template,
}

/// What the alarm action does to its alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmChange {
    /// `ALARM`: raise.
    Alarm,
    /// `OK`: clear.
    Ok,
    /// `INSUFFICIENT_DATA`: leave as it is.
    InsufficientData,
}

impl AlarmChange {
    fn parse(text: &str) -> Option<AlarmChange> {
        match text.trim() {
            "ALARM" => Some(AlarmChange::Alarm),
            "OK" => Some(AlarmChange::Ok),
            "INSUFFICIENT_DATA" => Some(AlarmChange::InsufficientData),
            _ => None,
        }
    }
}

/// An alarm change, rendered.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmCall {
    pub name: String,
    pub state: AlarmChange,
    pub reason: String,
}

const STATES: &str = "ALARM, OK or INSUFFICIENT_DATA";

impl AlarmSpec {
    pub(super) fn parse(value: &Json, path: &str) -> Result<AlarmSpec, DocumentError> {
        let p: Params = params(value, path)?;
        let state_value = template(path, "stateValue", &p.state_value)?;
        if state_value.is_literal() && AlarmChange::parse(&p.state_value).is_none() {
            return Err(DocumentError::new(
                format!("{path}.stateValue"),
                format!("{:?}: use {STATES}", p.state_value),
            ));
        }
        Ok(AlarmSpec {
            alarm_name: template(path, "alarmName", &p.alarm_name)?,
            state_value,
            state_reason: template(path, "stateReason", &p.state_reason)?,
        })
    }

    pub(super) fn prepare(&self, p: &Prepare<'_>) -> Result<AlarmCall, ActionError> {
        let name = p.render(&self.alarm_name)?;
        if name.is_empty() {
            return Err(ActionError("alarmName rendered empty".into()));
        }
        let text = p.render(&self.state_value)?;
        let state = AlarmChange::parse(&text)
            .ok_or_else(|| ActionError(format!("stateValue {text:?}: use {STATES}")))?;
        Ok(AlarmCall {
            name,
            state,
            reason: p.render(&self.state_reason)?,
        })
    }
}

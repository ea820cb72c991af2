//! `cloudwatchMetric` (alias `metric`): record a value in the monitor.
//!
//! AWS fields, all templates: `metricNamespace`, `metricName`,
//! `metricValue` (a number), `metricUnit`, `metricTimestamp` (optional,
//! epoch seconds). civitas sets the gauge `metricName{namespace=…}` (and
//! `unit=…` when given) to the value: the monitor keeps the latest value
//! of each series, not a history.

use civitas_rules::Json;
use serde::{Deserialize, Serialize};

use super::{ActionError, Prepare, number, params, template, template_opt};
use crate::document::DocumentError;
use crate::template::Template;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Params {
    metric_namespace: String,
    metric_name: String,
    metric_value: String,
    metric_unit: Option<String>,
    metric_timestamp: Option<String>,
    #[allow(dead_code)]
    role_arn: Option<String>,
}

#[derive(Debug)]
pub struct MetricSpec {
    metric_namespace: Template,
    pub metric_name: Template,
    metric_value: Template,
    metric_unit: Option<Template>,
    metric_timestamp: Option<Template>,
}

/// A metric value, rendered.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricCall {
    pub namespace: String,
    pub name: String,
    pub value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Epoch seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<f64>,
}

impl MetricSpec {
    pub(super) fn parse(value: &Json, path: &str) -> Result<MetricSpec, DocumentError> {
        let p: Params = params(value, path)?;
        Ok(MetricSpec {
            metric_namespace: template(path, "metricNamespace", &p.metric_namespace)?,
            metric_name: template(path, "metricName", &p.metric_name)?,
            metric_value: template(path, "metricValue", &p.metric_value)?,
            metric_unit: template_opt(path, "metricUnit", &p.metric_unit)?,
            metric_timestamp: template_opt(path, "metricTimestamp", &p.metric_timestamp)?,
        })
    }

    pub(super) fn prepare(&self, p: &Prepare<'_>) -> Result<MetricCall, ActionError> {
        let name = p.render(&self.metric_name)?;
        if name.is_empty() {
            return Err(ActionError("metricName rendered empty".into()));
        }
        Ok(MetricCall {
            namespace: p.render(&self.metric_namespace)?,
            name,
            value: number("metricValue", &p.render(&self.metric_value)?)?,
            unit: p.render_opt(&self.metric_unit)?.filter(|u| !u.is_empty()),
            timestamp: p
                .render_opt(&self.metric_timestamp)?
                .map(|t| number("metricTimestamp", &t))
                .transpose()?,
        })
    }
}

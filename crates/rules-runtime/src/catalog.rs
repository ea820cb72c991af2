//! The catalog of rules: every rule document by name, validated, and kept
//! durably in the store's `rules` table (or only in memory, for tests).
//!
//! Changes are checked and written under one lock, so "create" and
//! "replace" see the catalog as it is; each write is durable before the
//! call returns. A stored rule that no longer validates (its CA file is
//! gone, say) is kept, listed with its problem and not run, until it is
//! replaced or deleted.

use std::collections::BTreeMap;
use std::sync::Arc;

use civitas_store::{Op, RuleRecord, Store};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::document::{RuleDocument, ValidRule, validate};
use crate::error::RulesError;
use crate::message::now_ms;

/// A rule as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleInfo {
    pub name: String,
    pub enabled: bool,
    /// The FROM clause's topic filter ("" when the rule does not parse).
    pub topic_filter: String,
    /// Action types, in order.
    pub actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_action: Option<String>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// Why a stored rule does not run, when it does not validate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub document: RuleDocument,
}

#[derive(Clone)]
struct Entry {
    document: RuleDocument,
    created_at_ms: u64,
    updated_at_ms: u64,
    rule: Result<Arc<ValidRule>, String>,
}

impl Entry {
    fn info(&self, name: &str) -> RuleInfo {
        let action_kinds = |doc: &RuleDocument| -> Vec<String> {
            doc.actions
                .iter()
                .filter_map(|a| a.as_object().and_then(|m| m.keys().next().cloned()))
                .collect()
        };
        let (topic_filter, actions, error_action, problem) = match &self.rule {
            Ok(rule) => (
                rule.sql.from_filter().to_owned(),
                rule.actions.iter().map(|a| a.kind().to_owned()).collect(),
                rule.error_action.as_ref().map(|a| a.kind().to_owned()),
                None,
            ),
            Err(problem) => (
                String::new(),
                action_kinds(&self.document),
                self.document
                    .error_action
                    .as_ref()
                    .and_then(|a| a.as_object().and_then(|m| m.keys().next().cloned())),
                Some(problem.clone()),
            ),
        };
        RuleInfo {
            name: name.to_owned(),
            enabled: !self.document.rule_disabled,
            topic_filter,
            actions,
            error_action,
            created_at_ms: self.created_at_ms,
            updated_at_ms: self.updated_at_ms,
            problem,
            document: self.document.clone(),
        }
    }
}

/// Every rule, by name.
pub struct RuleCatalog {
    store: Option<Store>,
    entries: Mutex<BTreeMap<String, Entry>>,
}

impl std::fmt::Debug for RuleCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleCatalog")
            .field("durable", &self.store.is_some())
            .field("rules", &self.entries.lock().len())
            .finish()
    }
}

impl RuleCatalog {
    /// A catalog that forgets everything when dropped.
    pub fn in_memory() -> RuleCatalog {
        RuleCatalog {
            store: None,
            entries: Mutex::new(BTreeMap::new()),
        }
    }

    /// The catalog kept in `store`, loaded now. Blocking (reads the file).
    pub fn open(store: Store) -> Result<RuleCatalog, RulesError> {
        let mut entries = BTreeMap::new();
        for record in store.load_rules()? {
            let document: Result<RuleDocument, String> =
                serde_json::from_slice(&record.document).map_err(|e| e.to_string());
            let (document, rule) = match document {
                Ok(doc) => {
                    let rule = validate(&record.name, doc.clone())
                        .map(Arc::new)
                        .map_err(|e| e.to_string());
                    (doc, rule)
                }
                Err(e) => (
                    RuleDocument {
                        sql: String::new(),
                        description: None,
                        rule_disabled: true,
                        aws_iot_sql_version: crate::document::SQL_VERSION.into(),
                        actions: Vec::new(),
                        error_action: None,
                    },
                    Err(format!("stored document is unreadable: {e}")),
                ),
            };
            if let Err(problem) = &rule {
                tracing::warn!(rule = %record.name, %problem, "stored rule does not validate; it will not run");
            }
            entries.insert(
                record.name.clone(),
                Entry {
                    document,
                    created_at_ms: record.created_at_ms,
                    updated_at_ms: record.updated_at_ms,
                    rule,
                },
            );
        }
        Ok(RuleCatalog {
            store: Some(store),
            entries: Mutex::new(entries),
        })
    }

    /// Adds a new rule (AWS CreateTopicRule).
    pub fn create(&self, name: &str, document: RuleDocument) -> Result<RuleInfo, RulesError> {
        let rule = Arc::new(validate(name, document)?);
        let mut entries = self.entries.lock();
        if entries.contains_key(name) {
            return Err(RulesError::AlreadyExists(name.to_owned()));
        }
        let now = now_ms_u64();
        self.put(&mut entries, name, rule, now, now)
    }

    /// Replaces an existing rule's document (AWS ReplaceTopicRule).
    pub fn replace(&self, name: &str, document: RuleDocument) -> Result<RuleInfo, RulesError> {
        let rule = Arc::new(validate(name, document)?);
        let mut entries = self.entries.lock();
        let created = entries
            .get(name)
            .ok_or_else(|| RulesError::NotFound(name.to_owned()))?
            .created_at_ms;
        self.put(&mut entries, name, rule, created, now_ms_u64())
    }

    /// Enables or disables a rule (its `ruleDisabled`).
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<RuleInfo, RulesError> {
        let mut entries = self.entries.lock();
        let entry = entries
            .get(name)
            .ok_or_else(|| RulesError::NotFound(name.to_owned()))?;
        let mut document = entry.document.clone();
        document.rule_disabled = !enabled;
        let created = entry.created_at_ms;
        let rule = Arc::new(validate(name, document)?);
        self.put(&mut entries, name, rule, created, now_ms_u64())
    }

    /// Deletes a rule.
    pub fn delete(&self, name: &str) -> Result<(), RulesError> {
        let mut entries = self.entries.lock();
        if !entries.contains_key(name) {
            return Err(RulesError::NotFound(name.to_owned()));
        }
        if let Some(store) = &self.store {
            store.commit_blocking(vec![Op::DeleteRule {
                name: name.to_owned(),
            }])?;
        }
        entries.remove(name);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<RuleInfo, RulesError> {
        self.entries
            .lock()
            .get(name)
            .map(|e| e.info(name))
            .ok_or_else(|| RulesError::NotFound(name.to_owned()))
    }

    /// Every rule, ordered by name.
    pub fn list(&self) -> Vec<RuleInfo> {
        self.entries
            .lock()
            .iter()
            .map(|(name, e)| e.info(name))
            .collect()
    }

    /// The validated rule `name`, enabled or not.
    pub fn rule(&self, name: &str) -> Result<Arc<ValidRule>, RulesError> {
        match self.entries.lock().get(name) {
            None => Err(RulesError::NotFound(name.to_owned())),
            Some(Entry { rule: Ok(r), .. }) => Ok(r.clone()),
            Some(Entry {
                rule: Err(problem), ..
            }) => Err(RulesError::BadRequest(format!(
                "rule {name} does not validate: {problem}"
            ))),
        }
    }

    /// The rules that should run: valid and enabled.
    pub fn runnable(&self) -> Vec<Arc<ValidRule>> {
        self.entries
            .lock()
            .values()
            .filter_map(|e| e.rule.as_ref().ok())
            .filter(|r| r.enabled())
            .cloned()
            .collect()
    }

    fn put(
        &self,
        entries: &mut BTreeMap<String, Entry>,
        name: &str,
        rule: Arc<ValidRule>,
        created_at_ms: u64,
        updated_at_ms: u64,
    ) -> Result<RuleInfo, RulesError> {
        if let Some(store) = &self.store {
            let document = serde_json::to_vec(&rule.document).map_err(|e| {
                RulesError::BadRequest(format!("the document cannot be stored: {e}"))
            })?;
            store.commit_blocking(vec![Op::PutRule(RuleRecord {
                name: name.to_owned(),
                document,
                created_at_ms,
                updated_at_ms,
            })])?;
        }
        let entry = Entry {
            document: rule.document.clone(),
            created_at_ms,
            updated_at_ms,
            rule: Ok(rule),
        };
        let info = entry.info(name);
        entries.insert(name.to_owned(), entry);
        Ok(info)
    }
}

fn now_ms_u64() -> u64 {
    u64::try_from(now_ms()).unwrap_or(0)
}

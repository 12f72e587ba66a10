//! `alerts/rules.yaml`: which observation, which condition, for how many consecutive runs,
//! which severity and receivers, and the message. Every problem is reported with
//! file:line:column, all at once, like the job files.

use crate::config::place;
use crate::vocab::catalogue::{self, ObservationSpec};
pub use crate::vocab::condition::{CompareTo, Op};
use crate::vocab::text;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    #[serde(default)]
    receivers: Vec<String>,
    repeat_interval: Option<Spanned<String>>,
    #[serde(default = "yes")]
    send_resolved: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: Spanned<String>,
    observation: Spanned<String>,
    labels: Option<Spanned<BTreeMap<String, String>>>,
    /// Only observations of this job.
    job: Option<String>,
    condition: Spanned<String>,
    #[serde(default)]
    compare_to: CompareTo,
    #[serde(default = "one", rename = "for")]
    for_runs: u32,
    severity: Severity,
    receivers: Option<Vec<Spanned<String>>>,
    repeat_interval: Option<Spanned<String>>,
    send_resolved: Option<bool>,
    summary: Spanned<String>,
    description: Option<Spanned<String>>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    defaults: Option<Defaults>,
    #[serde(default)]
    rules: Vec<RuleFile>,
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub observation: String,
    /// The observation's labels must include these.
    pub labels: BTreeMap<String, String>,
    pub job: Option<String>,
    pub op: Op,
    pub threshold: f64,
    pub compare_to: CompareTo,
    /// Consecutive breaching runs before the alert fires.
    pub for_runs: u32,
    pub severity: Severity,
    pub receivers: Vec<String>,
    pub repeat_interval: Duration,
    pub send_resolved: bool,
    pub summary: String,
    pub description: String,
}

pub const DEFAULT_REPEAT: Duration = Duration::from_secs(4 * 3600);

/// `< 0.8`, `>= 1`, `> 5%` (a percentage is divided by 100).
pub fn parse_condition(text: &str) -> Option<(Op, f64)> {
    let text = text.trim();
    let (op, rest) = [
        ("<=", Op::LessOrEqual),
        (">=", Op::GreaterOrEqual),
        ("<", Op::Less),
        (">", Op::Greater),
    ]
    .iter()
    .find_map(|(symbol, op)| text.strip_prefix(symbol).map(|rest| (*op, rest.trim())))?;
    let (number, scale) = match rest.strip_suffix('%') {
        Some(n) => (n.trim(), 0.01),
        None => (rest, 1.0),
    };
    let value: f64 = number.parse().ok()?;
    value.is_finite().then_some((op, value * scale))
}

/// What a rule's summary and description may name: `{{value}}`, …, `{{labels.<label>}}`.
pub fn template_variables(spec: &ObservationSpec) -> Vec<String> {
    TEMPLATE_VARIABLES
        .iter()
        .map(|v| v.to_string())
        .chain(spec.label_names().into_iter().map(|l| format!("labels.{l}")))
        .collect()
}

/// The hint for a label named `job`: the run's label was renamed (Prometheus keeps `job` for
/// its scrape job and renamed ours `exported_job`).
fn renamed_job_label(name: &str) -> Option<String> {
    (name == "job").then(|| format!(" (the run's label is now \"{}\")", catalogue::JOB_LABEL))
}

/// Filled by [`super::render`] for every rule.
pub const TEMPLATE_VARIABLES: [&str; 8] = [
    "value",
    "threshold",
    "condition",
    "rule",
    "severity",
    "job",
    "version",
    "report_url",
];

/// The `{{name}}`s in `template` that [`super::render`] would leave unfilled.
fn unknown_variables(template: &str, spec: &ObservationSpec) -> Vec<String> {
    let known = template_variables(spec);
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim().to_string();
        if !known.contains(&name) && !out.contains(&name) {
            out.push(name);
        }
        rest = &after[end + 2..];
    }
    out
}

/// Reads the rules; `known_receivers` are the receivers the engine config defines. A missing
/// file means no rules.
pub fn load_rules(path: &Path, known_receivers: &[String]) -> Result<Vec<Rule>, Vec<String>> {
    let text = match crate::fsutil::read_text(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(vec![format!("{}: cannot read: {e}", path.display())]),
    };
    let file: RulesFile = crate::config::parse_yaml_listed(&text, path)?;
    let mut errors = Vec::new();
    let duration = |value: &Spanned<String>, errors: &mut Vec<String>| {
        crate::vocab::duration::parse(&value.value).unwrap_or_else(|e| {
            errors.push(format!("{}: repeat_interval: {e}", place(path, value)));
            DEFAULT_REPEAT
        })
    };
    let (default_receivers, default_repeat, default_resolved) = match &file.defaults {
        Some(d) => (
            d.receivers.clone(),
            d.repeat_interval
                .as_ref()
                .map_or(DEFAULT_REPEAT, |r| duration(r, &mut errors)),
            d.send_resolved,
        ),
        None => (Vec::new(), DEFAULT_REPEAT, true),
    };
    for receiver in &default_receivers {
        if !known_receivers.contains(receiver) {
            errors.push(format!(
                "{}: defaults.receivers: \"{receiver}\" is not a receiver of config/bankml.yaml (alerting.receivers: {})",
                path.display(),
                known_receivers.join(", ")
            ));
        }
    }
    let mut rules = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for rule in file.rules {
        let before = errors.len();
        if names.contains(&rule.name.value) {
            errors.push(format!(
                "{}: rule \"{}\" is defined twice",
                place(path, &rule.name),
                rule.name.value
            ));
        }
        names.push(rule.name.value.clone());
        let condition = parse_condition(&rule.condition.value);
        if condition.is_none() {
            errors.push(format!(
                "{}: condition: \"{}\" is not like \"< 0.8\", \">= 1\" or \"< -5%\"",
                place(path, &rule.condition),
                rule.condition.value
            ));
        }
        if rule.for_runs == 0 {
            errors.push(format!("{}: for: must be at least 1 run", place(path, &rule.name)));
        }
        let receivers: Vec<String> = match &rule.receivers {
            Some(list) => {
                for r in list {
                    if !known_receivers.contains(&r.value) {
                        errors.push(format!(
                            "{}: receivers: \"{}\" is not a receiver of config/bankml.yaml (alerting.receivers: {})",
                            place(path, r),
                            r.value,
                            known_receivers.join(", ")
                        ));
                    }
                }
                list.iter().map(|r| r.value.clone()).collect()
            }
            None => default_receivers.clone(),
        };
        let repeat = rule
            .repeat_interval
            .as_ref()
            .map_or(default_repeat, |r| duration(r, &mut errors));
        let spec = catalogue::find(&rule.observation.value);
        match spec {
            None => errors.push(format!(
                "{}: observation: \"{}\" is not an observation bankml publishes{}",
                place(path, &rule.observation),
                rule.observation.value,
                text::did_you_mean(&rule.observation.value, catalogue::ALL.iter().map(|s| s.name))
            )),
            Some(spec) => {
                if let Some(labels) = &rule.labels {
                    for name in labels.value.keys().filter(|name| !spec.has_label(name)) {
                        errors.push(format!(
                            "{}: labels: {} has no label \"{name}\" (its labels: {}){}",
                            place(path, labels),
                            spec.name,
                            spec.label_names().join(", "),
                            renamed_job_label(name).unwrap_or_else(|| text::did_you_mean(name, spec.label_names()))
                        ));
                    }
                }
                let templates = std::iter::once(("summary", &rule.summary))
                    .chain(rule.description.iter().map(|d| ("description", d)));
                for (field, template) in templates {
                    for variable in unknown_variables(&template.value, spec) {
                        let known = template_variables(spec);
                        errors.push(format!(
                            "{}: {field}: {{{{{variable}}}}} is not a template variable (known: {}){}",
                            place(path, template),
                            known.join(", "),
                            renamed_job_label(variable.trim_start_matches("labels."))
                                .unwrap_or_else(|| text::did_you_mean(&variable, known.iter().map(String::as_str)))
                        ));
                    }
                }
            }
        }
        if errors.len() > before {
            continue;
        }
        let Some((op, threshold)) = condition else { continue };
        rules.push(Rule {
            name: rule.name.value,
            observation: rule.observation.value,
            labels: rule.labels.map(|l| l.value).unwrap_or_default(),
            job: rule.job,
            op,
            threshold,
            compare_to: rule.compare_to,
            for_runs: rule.for_runs,
            severity: rule.severity,
            receivers,
            repeat_interval: repeat,
            send_resolved: rule.send_resolved.unwrap_or(default_resolved),
            summary: rule.summary.value,
            description: rule.description.map(|d| d.value).unwrap_or_default(),
        });
    }
    if errors.is_empty() { Ok(rules) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions() {
        assert_eq!(parse_condition("< 0.8"), Some((Op::Less, 0.8)));
        assert_eq!(parse_condition(">=1"), Some((Op::GreaterOrEqual, 1.0)));
        assert_eq!(parse_condition("< -5%"), Some((Op::Less, -0.05)));
        for bad in ["0.8", "= 1", "< x", "<", "> inf"] {
            assert_eq!(parse_condition(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_problem_is_named_with_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.yaml");
        std::fs::write(
            &path,
            "defaults:\n  receivers: [slack]\nrules:\n  - name: a\n    observation: churn_auc\n    condition: \"about 0.8\"\n    severity: critical\n    summary: x\n  - name: b\n    observation: churn_f1\n    condition: \"> 1\"\n    severity: warning\n    receivers: [pager]\n    repeat_interval: soon\n    summary: y\n",
        )
        .unwrap();
        let errors = load_rules(&path, &["slack".to_string()]).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("rules.yaml:6:16: condition"), "{errors:?}");
        assert!(
            errors[1].contains("rules.yaml:13:17: receivers: \"pager\""),
            "{errors:?}"
        );
        assert!(errors[2].contains("rules.yaml:14:22: repeat_interval"), "{errors:?}");
        std::fs::write(
            &path,
            "rules:\n  - name: a\n    observation: churn_auc\n    condition: \"> 1\"\n    severty: critical\n",
        )
        .unwrap();
        let errors = load_rules(&path, &[]).unwrap_err();
        assert!(errors[0].contains("severty"), "{errors:?}");
        assert!(load_rules(&dir.path().join("missing.yaml"), &[]).unwrap().is_empty());
    }

    #[test]
    fn rules_are_checked_against_the_observation_catalogue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.yaml");
        std::fs::write(
            &path,
            "rules:\n  - name: typo\n    observation: churn_aucc\n    condition: \"< 0.8\"\n    severity: critical\n    summary: x\n  - name: label\n    observation: feature_psi\n    labels: {modle: churn, feature: age}\n    condition: \"> 0.2\"\n    severity: warning\n    summary: \"{{labels.feature}} {{labels.risk}} {{vaule}}\"\n    description: \"{{report_url}} {{labels.job}}\"\n  - name: good\n    observation: churn_risk_clients\n    labels: {risk: High, bankml_job: daily-scoring}\n    condition: \"> 100\"\n    severity: info\n    summary: \"{{labels.risk}}: {{value}} (v{{version}})\"\n",
        )
        .unwrap();
        let errors = load_rules(&path, &[]).unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(
            errors[0].contains("rules.yaml:3:18: observation: \"churn_aucc\" is not an observation bankml publishes (did you mean \"churn_auc\"?)"),
            "{errors:#?}"
        );
        assert!(
            errors[1].contains("rules.yaml:9:13: labels: feature_psi has no label \"modle\" (its labels: model, feature, bankml_job) (did you mean \"model\"?)"),
            "{errors:#?}"
        );
        assert!(
            errors[2].contains("rules.yaml:12:14: summary: {{labels.risk}} is not a template variable"),
            "{errors:#?}"
        );
        assert!(
            errors[3].contains("{{vaule}} is not a template variable")
                && errors[3].contains("(did you mean \"value\"?)"),
            "{errors:#?}"
        );
        // A rule written when the run's label was `job` is told its new name.
        assert!(
            errors[4].contains("{{labels.job}} is not a template variable")
                && errors[4].contains("(the run's label is now \"bankml_job\")"),
            "{errors:#?}"
        );
        // With the mistakes mended, the same file loads.
        let text = std::fs::read_to_string(&path).unwrap();
        let mended = text
            .replace("churn_aucc", "churn_auc")
            .replace("modle", "model")
            .replace(" {{labels.risk}} {{vaule}}", " {{value}}")
            .replace("{{labels.job}}", "{{labels.bankml_job}}");
        std::fs::write(&path, mended).unwrap();
        let rules = load_rules(&path, &[]).unwrap();
        assert_eq!(
            rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["typo", "label", "good"]
        );
    }
}

//! `reports/index.html`: every run, newest first, with its status, the alerts it raised and a
//! link to its report.

use super::svg::escape;
use crate::vocab::run::RunRecord;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// `alerts`: per run id, the (rule, firing|resolved) it notified.
pub fn render(
    runs: &[RunRecord],
    alerts: &BTreeMap<i64, Vec<(String, String)>>,
    firing: &[(String, String)],
) -> String {
    let mut out = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>bankml — runs</title><style>\
         body{font-family:sans-serif;margin:24px} table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}\
         th{background:#f3f3f3} .succeeded{color:#2e7d32} .failed,.timed_out,.interrupted{color:#c62828;font-weight:bold}\
         .skipped,.cancelled{color:#777} .firing{color:#c62828} .resolved{color:#2e7d32}</style></head><body><h1>bankml runs</h1>",
    );
    if firing.is_empty() {
        out.push_str("<p>No alert is firing.</p>");
    } else {
        out.push_str("<h2>Firing now</h2><ul>");
        for (rule, summary) in firing {
            let _ = write!(
                out,
                "<li class=\"firing\"><b>{}</b>: {}</li>",
                escape(rule),
                escape(summary)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str(
        "<table id=\"runs\"><tr><th>run</th><th>job</th><th>trigger</th><th>started</th><th>seconds</th><th>attempt</th>\
         <th>status</th><th>alerts</th><th>report</th></tr>",
    );
    for r in runs {
        let status = r.status.name();
        let link = r
            .report_path
            .as_ref()
            .map(|_| format!("<a href=\"{}/{}/report.html\">report</a>", escape(&r.job), r.id))
            .unwrap_or_else(|| escape(r.error.as_deref().unwrap_or("")));
        let raised: Vec<String> = alerts
            .get(&r.id)
            .map(|list| {
                list.iter()
                    .map(|(rule, state)| format!("<span class=\"{state}\">{} ({state})</span>", escape(rule)))
                    .collect()
            })
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr class=\"run\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{status}\">{status}</td><td>{}</td><td>{link}</td></tr>",
            r.id,
            escape(&r.job),
            escape(&r.trigger),
            escape(&r.started_at),
            r.seconds.map(|s| format!("{s:.1}")).unwrap_or_default(),
            r.attempt,
            raised.join(", ")
        );
    }
    out.push_str("</table></body></html>");
    out
}

pub fn write(
    reports_dir: &Path,
    runs: &[RunRecord],
    alerts: &BTreeMap<i64, Vec<(String, String)>>,
    firing: &[(String, String)],
) -> Result<(), crate::fsutil::FsError> {
    std::fs::create_dir_all(reports_dir).map_err(crate::fsutil::io_error("creating", reports_dir))?;
    crate::fsutil::write_bytes_atomic(&reports_dir.join("index.html"), render(runs, alerts, firing).as_bytes())
}

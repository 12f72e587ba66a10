//! The contacts table: what the bank did with the campaign lists — who was in which arm,
//! when they were contacted, what they were offered and whether they clicked. Optional in a
//! snapshot folder (the month the contacts were made); read by the business job only.
//!
//! Checked like every other export (file, row and column named; nothing used when anything is
//! wrong), and against the campaigns: a campaign must name a kind and an earlier snapshot, an
//! arm must be one its kind has, a contact cannot precede its campaign's snapshot nor follow
//! the folder's, an offer campaign's row names its offer, and no client is in a campaign twice
//! (within a file or across months).

use crate::config::EngineConfig;
use crate::data::campaign::{Arm, CampaignId, CampaignKind};
use crate::data::date::Date;
use crate::data::problem::{Origin, Problems};
use crate::data::schema::Table;
use crate::data::snapshot::IngestError;
use crate::data::source::{self, LoadedTable};
use crate::data::validate;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// One row of a contacts table.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub campaign: CampaignId,
    pub cli: i64,
    pub arm: Arm,
    /// Empty for the control (not contacted).
    pub contacted_on: Option<Date>,
    /// The product offered (offer campaigns; the control's is the one it would have been).
    pub offer: Option<String>,
    pub clicked: Option<bool>,
}

/// Every contact of every snapshot folder, in folder order.
#[derive(Debug, Default)]
pub struct Contacts {
    pub rows: Vec<Contact>,
    /// The files they came from.
    pub files: Vec<PathBuf>,
}

/// Reads and checks the contacts table of each folder that has one. All problems of all
/// folders are gathered before failing, so one run names everything to fix.
pub fn read_all(snapshots: &[(Date, PathBuf)], config: &EngineConfig) -> Result<Contacts, IngestError> {
    let known: Vec<Date> = snapshots.iter().map(|(d, _)| *d).collect();
    let mut contacts = Contacts::default();
    let mut seen: HashMap<(CampaignId, i64), String> = HashMap::new();
    let mut problems = Problems::default();
    let mut failed_dir: Option<PathBuf> = None;
    for (date, dir) in snapshots {
        let before = problems.has_errors();
        let Some(loaded) = read_folder(dir, config, &mut problems) else {
            if problems.has_errors() && !before {
                failed_dir.get_or_insert_with(|| dir.clone());
            }
            continue;
        };
        let rows = check_rows(&loaded, *date, &known, &mut seen, &mut problems);
        if problems.has_errors() && !before {
            failed_dir.get_or_insert_with(|| dir.clone());
        }
        contacts.rows.extend(rows);
        contacts.files.push(loaded.origin.path.clone());
    }
    if problems.has_errors() {
        return Err(IngestError::Invalid {
            dir: failed_dir.unwrap_or_default(),
            problems: problems.into_list(),
        });
    }
    Ok(contacts)
}

/// The folder's contacts table, checked against its clients and catalog; `None` when the
/// folder has none (or it cannot be read: the reason is in `problems`).
fn read_folder(dir: &Path, config: &EngineConfig, problems: &mut Problems) -> Option<LoadedTable> {
    let (path, format) = source::locate_optional(dir, Table::Contacts, problems)?;
    let contacts = source::read_table(&path, format, Table::Contacts, &config.ingest, problems)?;
    let mut others = BTreeMap::new();
    for table in [Table::Clients, Table::Catalog] {
        if let Some((path, format)) = source::locate(dir, table, problems)
            && let Some(loaded) = source::read_table(&path, format, table, &config.ingest, problems)
        {
            others.insert(table, loaded);
        }
    }
    validate::validate_optional(&contacts, &others, problems);
    Some(contacts)
}

/// The campaign-level checks, row by row; the rows that pass.
fn check_rows(
    loaded: &LoadedTable,
    folder: Date,
    known: &[Date],
    seen: &mut HashMap<(CampaignId, i64), String>,
    problems: &mut Problems,
) -> Vec<Contact> {
    let (frame, origin) = (&loaded.frame, &loaded.origin);
    let text = |name: &str| frame.column(name).ok().and_then(|c| c.str().ok().cloned());
    let (Some(campaigns), Some(arms), Some(offers)) = (text("campaign"), text("arm"), text("offer")) else {
        return Vec::new();
    };
    let Ok(clients) = frame.column("cli").and_then(|c| c.i64().cloned()) else {
        return Vec::new();
    };
    let Ok(contacted) = frame.column("contacted_on").and_then(|c| c.date().cloned()) else {
        return Vec::new();
    };
    let Ok(clicked) = frame.column("clicked").and_then(|c| c.i64().cloned()) else {
        return Vec::new();
    };
    let contacted = contacted.physical().clone();
    // A contacted_on that was not a date is reported as such; not again as missing.
    let date_rejected = loaded.rejected.contains(&"contacted_on");
    let file = origin.file();
    let mut rows = Vec::with_capacity(frame.height());
    for row in 0..frame.height() {
        let (Some(campaign_text), Some(cli), Some(arm_text)) = (campaigns.get(row), clients.get(row), arms.get(row))
        else {
            continue; // a missing required value, reported already
        };
        let Some(campaign) = campaign_of(campaign_text, folder, known, origin, row, problems) else {
            continue;
        };
        let Some(arm) = Arm::parse(arm_text).filter(|a| campaign.kind.arms().contains(a)) else {
            let allowed: Vec<&str> = campaign.kind.arms().iter().map(|a| a.as_str()).collect();
            problems.error(
                &format!("{file} unknown arm"),
                origin.cell(row, "arm"),
                format!(
                    "arm \"{arm_text}\" is not one a {} campaign has ({})",
                    campaign.kind.as_str(),
                    allowed.join(", ")
                ),
            );
            continue;
        };
        let contacted_on = contacted.get(row).map(Date);
        let clicked_value = clicked.get(row);
        if arm == Arm::Control && (contacted_on.is_some() || clicked_value.is_some()) {
            let column = if contacted_on.is_some() {
                "contacted_on"
            } else {
                "clicked"
            };
            problems.error(
                &format!("{file} contacted control"),
                origin.cell(row, column),
                format!(
                    "a control client is held out, not contacted: {column} must be empty (a contacted control \
                     would make every comparison with it wrong)"
                ),
            );
            continue;
        }
        if campaign.kind == CampaignKind::Retention && (offers.get(row).is_some() || clicked_value.is_some()) {
            let column = if offers.get(row).is_some() { "offer" } else { "clicked" };
            problems.error(
                &format!("{file} offer on a retention row"),
                origin.cell(row, column),
                format!("{campaign} is a retention campaign: {column} must be empty (offers and clicks belong to offer campaigns)"),
            );
            continue;
        }
        if let Some(on) = contacted_on {
            if on <= campaign.snapshot {
                problems.error(
                    &format!("{file} contact before its campaign"),
                    origin.cell(row, "contacted_on"),
                    format!(
                        "contacted_on {on} is not after {campaign}'s snapshot {}: its list did not exist yet",
                        campaign.snapshot
                    ),
                );
                continue;
            }
            if on > folder {
                problems.error(
                    &format!("{file} contact after its snapshot"),
                    origin.cell(row, "contacted_on"),
                    format!("contacted_on {on} is after this snapshot's date {folder}"),
                );
                continue;
            }
        } else if arm != Arm::Control && !date_rejected {
            problems.error(
                &format!("{file} contacted_on missing"),
                origin.cell(row, "contacted_on"),
                format!("a {arm} client was contacted: contacted_on is required (empty only for the control)"),
            );
            continue;
        }
        let offer = offers.get(row).map(str::to_string);
        if campaign.kind == CampaignKind::Offer && offer.is_none() {
            problems.error(
                &format!("{file} offer missing"),
                origin.cell(row, "offer"),
                format!("{campaign} is an offer campaign: each row names the product offered"),
            );
            continue;
        }
        if let Some(first) = seen.get(&(campaign, cli)) {
            // Twice in this file is the key check's to say; here, twice across months.
            if first.starts_with(&file) {
                continue;
            }
            problems.error(
                &format!("{file} duplicate contact"),
                origin.row(row),
                format!("client {cli} is in {campaign} already (first at {first})"),
            );
            continue;
        }
        seen.insert((campaign, cli), origin.row(row));
        rows.push(Contact {
            campaign,
            cli,
            arm,
            contacted_on,
            offer,
            clicked: clicked_value.map(|v| v == 1),
        });
    }
    rows
}

/// The campaign a row names: a known kind and a snapshot before the folder's.
fn campaign_of(
    text: &str,
    folder: Date,
    known: &[Date],
    origin: &Origin,
    row: usize,
    problems: &mut Problems,
) -> Option<CampaignId> {
    let kind = format!("{} unknown campaign", origin.file());
    let Some(campaign) = CampaignId::parse(text) else {
        let kinds: Vec<&str> = CampaignKind::ALL.iter().map(|k| k.as_str()).collect();
        problems.error(
            &kind,
            origin.cell(row, "campaign"),
            format!(
                "campaign \"{text}\" is not a campaign id: KIND-YYYY-MM-DD with KIND one of {}",
                kinds.join(", ")
            ),
        );
        return None;
    };
    if campaign.snapshot >= folder || !known.contains(&campaign.snapshot) {
        problems.error(
            &kind,
            origin.cell(row, "campaign"),
            format!(
                "campaign \"{text}\" names snapshot {}, which is not an earlier snapshot of this bank",
                campaign.snapshot
            ),
        );
        return None;
    }
    Some(campaign)
}

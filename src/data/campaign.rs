//! The words of a campaign: which kind it is, which snapshot's scores chose its clients, and
//! the arms a client can be in. Shared by the contacts table's checks, the synthetic bank
//! that runs campaigns, and the business job that measures them.

use crate::data::date::Date;
use std::fmt;

/// What a campaign does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignKind {
    /// Calls to the clients most likely to leave, with the actions their reasons call for.
    /// Measured by who is still a client when the horizon has passed.
    Retention,
    /// Each listed client is offered one product. Measured by clicks and by the product being
    /// opened within the conversion window.
    Offer,
}

impl CampaignKind {
    pub const ALL: [CampaignKind; 2] = [CampaignKind::Retention, CampaignKind::Offer];

    pub const fn as_str(self) -> &'static str {
        match self {
            CampaignKind::Retention => "retention",
            CampaignKind::Offer => "offer",
        }
    }

    /// The arms a campaign of this kind may have.
    pub fn arms(self) -> &'static [Arm] {
        match self {
            CampaignKind::Retention => &[Arm::Champion, Arm::Challenger, Arm::Control],
            CampaignKind::Offer => &[Arm::Champion, Arm::Challenger, Arm::Baseline, Arm::Control],
        }
    }
}

/// Who chose or treated a client of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// Treated as the champion model says.
    Champion,
    /// Treated as the challenger model says (when one is being tried).
    Challenger,
    /// Offered the most popular product the client does not hold: what a bank without a
    /// recommender would do (offer campaigns).
    Baseline,
    /// Held out at random and not contacted: what would have happened anyway.
    Control,
}

impl Arm {
    pub const ALL: [Arm; 4] = [Arm::Champion, Arm::Challenger, Arm::Baseline, Arm::Control];

    pub const fn as_str(self) -> &'static str {
        match self {
            Arm::Champion => "champion",
            Arm::Challenger => "challenger",
            Arm::Baseline => "baseline",
            Arm::Control => "control",
        }
    }

    pub fn parse(text: &str) -> Option<Arm> {
        Arm::ALL.into_iter().find(|a| a.as_str() == text.trim())
    }
}

impl fmt::Display for Arm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A campaign is named by its kind and the snapshot whose scores chose its clients:
/// `retention-2025-09-30`, `offer-2025-09-30`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CampaignId {
    pub kind: CampaignKind,
    pub snapshot: Date,
}

impl CampaignId {
    pub fn parse(text: &str) -> Option<CampaignId> {
        let text = text.trim();
        CampaignKind::ALL.into_iter().find_map(|kind| {
            let date = text.strip_prefix(kind.as_str())?.strip_prefix('-')?;
            Some(CampaignId {
                kind,
                snapshot: Date::parse(date)?,
            })
        })
    }
}

impl fmt::Display for CampaignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.kind.as_str(), self.snapshot)
    }
}

impl serde::Serialize for CampaignId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CampaignId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CampaignId::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a campaign id (e.g. offer-2025-09-30)")))
    }
}

/// The share of a campaign's list in each arm. The control is drawn first, so adding or
/// dropping a challenger never moves a client into or out of the control.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ArmShares {
    pub control: f64,
    pub challenger: f64,
    /// Offer campaigns only.
    pub baseline: f64,
}

impl ArmShares {
    /// The arm of `client` in `campaign`: a hash of both, so the same client lands in the
    /// same arm wherever it is computed (scoring's lists, a bank's own tools, the generator),
    /// and in independent arms from one campaign to the next.
    pub fn arm_of(&self, campaign: CampaignId, client: i64) -> Arm {
        let key = format!("{campaign}/{client}");
        let hash = blake3::hash(key.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        let u = (u64::from_le_bytes(first) >> 11) as f64 / (1u64 << 53) as f64;
        let baseline = if campaign.kind == CampaignKind::Offer {
            self.baseline
        } else {
            0.0
        };
        if u < self.control {
            Arm::Control
        } else if u < self.control + self.challenger {
            Arm::Challenger
        } else if u < self.control + self.challenger + baseline {
            Arm::Baseline
        } else {
            Arm::Champion
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_and_refuse_what_is_not_one() {
        let id = CampaignId::parse("offer-2025-09-30").unwrap();
        assert_eq!(id.kind, CampaignKind::Offer);
        assert_eq!(id.to_string(), "offer-2025-09-30");
        assert_eq!(CampaignId::parse("retention-2025-9-30").map(|i| i.to_string()), None);
        assert_eq!(CampaignId::parse("upsell-2025-09-30"), None);
        assert_eq!(CampaignId::parse("offer2025-09-30"), None);
    }

    #[test]
    fn arms_take_their_shares_and_keep_the_control_when_a_challenger_is_added() {
        let id = CampaignId::parse("offer-2025-09-30").unwrap();
        let with = ArmShares {
            control: 0.1,
            challenger: 0.3,
            baseline: 0.2,
        };
        let without = ArmShares {
            challenger: 0.0,
            ..with
        };
        let n = 20_000;
        let mut counts = std::collections::BTreeMap::new();
        for cli in 0..n {
            let arm = with.arm_of(id, cli);
            *counts.entry(arm).or_insert(0usize) += 1;
            assert_eq!(arm == Arm::Control, without.arm_of(id, cli) == Arm::Control);
        }
        for (arm, share) in [
            (Arm::Control, 0.1),
            (Arm::Challenger, 0.3),
            (Arm::Baseline, 0.2),
            (Arm::Champion, 0.4),
        ] {
            let seen = counts[&arm] as f64 / n as f64;
            // Four standard errors of a share at n = 20,000.
            assert!(
                (seen - share).abs() < 4.0 * (share * (1.0 - share) / n as f64).sqrt(),
                "{arm}: {seen}"
            );
        }
    }
}

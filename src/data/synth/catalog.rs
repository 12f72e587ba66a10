//! The synthetic bank's product catalog and the co-holding structure that product adoption
//! follows (so a recommender has something real to find).

pub const CATEGORIES: [&str; 11] = [
    "accounts",
    "savings",
    "cards",
    "consumer_loans",
    "mortgages",
    "insurance",
    "investments",
    "pensions",
    "digital",
    "business",
    "services",
];

pub const SEGMENTS: [&str; 5] = ["Youth", "Mass", "Affluent", "Private", "Business"];
pub const INCOME_BANDS: [&str; 5] = ["<20k", "20-40k", "40-70k", "70-120k", ">120k"];
pub const REGIONS: [&str; 6] = ["Capital", "North", "South", "East", "West", "Islands"];

/// How a product's balance behaves: none (a service), a deposit that grows, or a credit that
/// amortises. `mu`/`sigma` are the log-normal parameters of the opening balance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Balance {
    None,
    Deposit { mu: f64, sigma: f64 },
    Credit { mu: f64, sigma: f64 },
}

pub struct Product {
    pub id: &'static str,
    pub name: &'static str,
    pub category: usize,
    /// Relative popularity among new openings.
    pub base: f64,
    /// Age at which the product fits best, and how wide that fit is (years).
    pub age_peak: f64,
    pub age_width: f64,
    /// Multiplier per segment (Youth, Mass, Affluent, Private, Business).
    pub segment_fit: [f64; 5],
    pub balance: Balance,
    /// Month index (from the first snapshot) at which the product is launched.
    pub launch_month: Option<i32>,
    /// Monthly probability that a holder closes it without leaving the bank.
    pub attrition: f64,
}

const EVERY: [f64; 5] = [1.0, 1.0, 1.0, 1.0, 1.0];
const RETAIL: [f64; 5] = [0.6, 1.0, 1.2, 1.0, 0.4];
const WEALTH: [f64; 5] = [0.1, 0.5, 2.5, 4.0, 0.6];
const BUSINESS: [f64; 5] = [0.02, 0.05, 0.2, 0.3, 6.0];
const YOUNG: [f64; 5] = [4.0, 0.8, 0.3, 0.1, 0.2];

const fn dep(mu: f64, sigma: f64) -> Balance {
    Balance::Deposit { mu, sigma }
}
const fn cred(mu: f64, sigma: f64) -> Balance {
    Balance::Credit { mu, sigma }
}

macro_rules! product {
    ($id:literal, $name:literal, $cat:literal, $base:literal, $peak:literal, $width:literal, $fit:expr, $bal:expr, $attr:literal) => {
        product!($id, $name, $cat, $base, $peak, $width, $fit, $bal, $attr, None)
    };
    ($id:literal, $name:literal, $cat:literal, $base:literal, $peak:literal, $width:literal, $fit:expr, $bal:expr, $attr:literal, $launch:expr) => {
        Product {
            id: $id,
            name: $name,
            category: $cat,
            base: $base,
            age_peak: $peak,
            age_width: $width,
            segment_fit: $fit,
            balance: $bal,
            launch_month: $launch,
            attrition: $attr,
        }
    };
}

pub const PRODUCTS: [Product; 46] = [
    product!(
        "P01",
        "Current account",
        0,
        9.0,
        40.0,
        30.0,
        EVERY,
        dep(7.2, 1.0),
        0.002
    ),
    product!(
        "P02",
        "Premium current account",
        0,
        1.2,
        48.0,
        14.0,
        WEALTH,
        dep(8.8, 0.9),
        0.003
    ),
    product!("P03", "Youth account", 0, 1.5, 20.0, 4.0, YOUNG, dep(5.8, 0.8), 0.004),
    product!(
        "P04",
        "Business account",
        0,
        1.0,
        44.0,
        14.0,
        BUSINESS,
        dep(9.0, 1.1),
        0.003
    ),
    product!(
        "P05",
        "Savings account",
        1,
        4.0,
        45.0,
        22.0,
        RETAIL,
        dep(8.5, 1.2),
        0.004
    ),
    product!(
        "P06",
        "Term deposit 12 months",
        1,
        1.6,
        58.0,
        14.0,
        RETAIL,
        dep(9.4, 0.9),
        0.03
    ),
    product!(
        "P07",
        "Term deposit 36 months",
        1,
        0.9,
        62.0,
        12.0,
        WEALTH,
        dep(9.8, 0.9),
        0.015
    ),
    product!(
        "P08",
        "Housing savings plan",
        1,
        1.1,
        32.0,
        8.0,
        RETAIL,
        dep(8.6, 0.8),
        0.006
    ),
    product!(
        "P09",
        "Children's savings account",
        1,
        0.9,
        38.0,
        7.0,
        RETAIL,
        dep(7.5, 0.9),
        0.003
    ),
    product!("P10", "Debit card", 2, 7.0, 36.0, 25.0, EVERY, Balance::None, 0.004),
    product!(
        "P11",
        "Classic credit card",
        2,
        3.0,
        40.0,
        16.0,
        RETAIL,
        cred(7.0, 0.8),
        0.006
    ),
    product!(
        "P12",
        "Gold credit card",
        2,
        0.9,
        50.0,
        12.0,
        WEALTH,
        cred(7.8, 0.8),
        0.004
    ),
    product!("P13", "Prepaid card", 2, 0.8, 22.0, 6.0, YOUNG, dep(4.5, 0.8), 0.01),
    product!(
        "P14",
        "Business card",
        2,
        0.8,
        44.0,
        14.0,
        BUSINESS,
        cred(8.0, 0.8),
        0.005
    ),
    product!("P15", "Personal loan", 3, 1.6, 38.0, 12.0, RETAIL, cred(9.2, 0.7), 0.02),
    product!("P16", "Car loan", 3, 1.0, 40.0, 12.0, RETAIL, cred(9.7, 0.5), 0.015),
    product!("P17", "Student loan", 3, 0.8, 21.0, 3.5, YOUNG, cred(9.0, 0.5), 0.008),
    product!(
        "P18",
        "Overdraft facility",
        3,
        1.2,
        36.0,
        15.0,
        RETAIL,
        cred(6.8, 0.9),
        0.01
    ),
    product!(
        "P19",
        "Fixed-rate mortgage",
        4,
        1.0,
        37.0,
        8.0,
        RETAIL,
        cred(11.9, 0.5),
        0.003
    ),
    product!(
        "P20",
        "Variable-rate mortgage",
        4,
        0.6,
        38.0,
        9.0,
        RETAIL,
        cred(11.8, 0.5),
        0.004
    ),
    product!(
        "P21",
        "Green mortgage",
        4,
        1.4,
        35.0,
        8.0,
        RETAIL,
        cred(12.0, 0.4),
        0.002,
        Some(6)
    ),
    product!(
        "P22",
        "Home insurance",
        5,
        1.4,
        42.0,
        14.0,
        RETAIL,
        Balance::None,
        0.005
    ),
    product!(
        "P23",
        "Life insurance",
        5,
        1.2,
        45.0,
        12.0,
        RETAIL,
        Balance::None,
        0.004
    ),
    product!("P24", "Car insurance", 5, 1.2, 40.0, 16.0, RETAIL, Balance::None, 0.008),
    product!(
        "P25",
        "Health insurance",
        5,
        0.9,
        48.0,
        15.0,
        WEALTH,
        Balance::None,
        0.005
    ),
    product!(
        "P26",
        "Payment protection insurance",
        5,
        0.5,
        38.0,
        9.0,
        RETAIL,
        Balance::None,
        0.01
    ),
    product!(
        "P27",
        "Travel insurance",
        5,
        0.7,
        35.0,
        14.0,
        WEALTH,
        Balance::None,
        0.02
    ),
    product!("P28", "Equity fund", 6, 1.2, 47.0, 14.0, WEALTH, dep(9.6, 1.1), 0.01),
    product!("P29", "Bond fund", 6, 0.9, 57.0, 12.0, WEALTH, dep(9.8, 1.0), 0.008),
    product!("P30", "Balanced fund", 6, 1.0, 52.0, 14.0, WEALTH, dep(9.5, 1.0), 0.008),
    product!(
        "P31",
        "Brokerage account",
        6,
        0.7,
        42.0,
        14.0,
        WEALTH,
        dep(9.9, 1.3),
        0.008
    ),
    product!("P32", "ESG fund", 6, 0.6, 34.0, 10.0, WEALTH, dep(9.0, 1.0), 0.008),
    product!(
        "P33",
        "Structured note",
        6,
        0.3,
        60.0,
        10.0,
        WEALTH,
        dep(10.8, 0.8),
        0.02
    ),
    product!("P34", "Pension plan", 7, 1.3, 50.0, 10.0, RETAIL, dep(9.8, 1.0), 0.002),
    product!(
        "P35",
        "Retirement annuity",
        7,
        0.5,
        64.0,
        7.0,
        WEALTH,
        dep(10.9, 0.8),
        0.002
    ),
    product!("P36", "Mobile banking", 8, 5.0, 30.0, 16.0, EVERY, Balance::None, 0.003),
    product!(
        "P37",
        "Digital wallet",
        8,
        1.8,
        26.0,
        10.0,
        YOUNG,
        dep(4.2, 0.9),
        0.01,
        Some(2)
    ),
    product!(
        "P38",
        "Instant payments",
        8,
        1.6,
        30.0,
        13.0,
        EVERY,
        Balance::None,
        0.004
    ),
    product!(
        "P39",
        "Merchant POS terminal",
        9,
        0.6,
        44.0,
        12.0,
        BUSINESS,
        Balance::None,
        0.006
    ),
    product!(
        "P40",
        "Business loan",
        9,
        0.6,
        46.0,
        12.0,
        BUSINESS,
        cred(11.0, 0.8),
        0.01
    ),
    product!(
        "P41",
        "Equipment leasing",
        9,
        0.4,
        46.0,
        12.0,
        BUSINESS,
        cred(10.5, 0.7),
        0.01
    ),
    product!(
        "P42",
        "Safe deposit box",
        10,
        0.4,
        60.0,
        12.0,
        WEALTH,
        Balance::None,
        0.004
    ),
    product!(
        "P43",
        "Wealth advisory",
        10,
        0.4,
        55.0,
        12.0,
        WEALTH,
        Balance::None,
        0.004
    ),
    product!(
        "P44",
        "Foreign currency account",
        10,
        0.5,
        42.0,
        14.0,
        WEALTH,
        dep(8.0, 1.1),
        0.006
    ),
    product!(
        "P45",
        "SMS balance alerts",
        10,
        1.0,
        45.0,
        20.0,
        EVERY,
        Balance::None,
        0.01
    ),
    product!(
        "P46",
        "Premium concierge",
        10,
        0.2,
        55.0,
        10.0,
        WEALTH,
        Balance::None,
        0.005
    ),
];

/// Products that are held together, with how much holding one raises the odds of opening
/// another. Overlapping bundles give the co-holding matrix its structure.
const BUNDLES: [(&[&str], f64); 11] = [
    (&["P01", "P10", "P11", "P36"], 2.5),
    (&["P19", "P20", "P21", "P22", "P23", "P26"], 4.0),
    (&["P15", "P16", "P24"], 3.5),
    (&["P05", "P06", "P07", "P08"], 2.5),
    (&["P28", "P29", "P30", "P31", "P32", "P33", "P43"], 3.0),
    (&["P04", "P14", "P39", "P40", "P41"], 4.5),
    (&["P03", "P13", "P17", "P37"], 3.0),
    (&["P34", "P35", "P23", "P25"], 3.0),
    (&["P36", "P37", "P38", "P45"], 3.0),
    (&["P02", "P12", "P27", "P42", "P43", "P44", "P46"], 3.5),
    (&["P09", "P08", "P23", "P25"], 2.0),
];

pub fn product_index(id: &str) -> Option<usize> {
    PRODUCTS.iter().position(|p| p.id == id)
}

/// `affinity[i][j]`: how much holding `i` multiplies the odds of opening `j`.
pub fn affinity_matrix() -> Vec<[f64; PRODUCTS.len()]> {
    let mut matrix = vec![[1.0; PRODUCTS.len()]; PRODUCTS.len()];
    for (members, strength) in BUNDLES {
        let indices: Vec<usize> = members.iter().filter_map(|id| product_index(id)).collect();
        for &i in &indices {
            for &j in &indices {
                if i != j {
                    matrix[i][j] += strength;
                }
            }
        }
    }
    matrix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_consistent() {
        assert!(PRODUCTS.len() >= 40);
        for (i, p) in PRODUCTS.iter().enumerate() {
            assert_eq!(p.id, format!("P{:02}", i + 1));
            assert!(p.category < CATEGORIES.len());
        }
        let used: std::collections::BTreeSet<usize> = PRODUCTS.iter().map(|p| p.category).collect();
        assert_eq!(used.len(), CATEGORIES.len(), "every category has a product");
        for (members, _) in BUNDLES {
            for id in members {
                assert!(product_index(id).is_some(), "bundle names unknown product {id}");
            }
        }
    }
}

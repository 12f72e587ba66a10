//! Each holding's product looked up in the catalog: what cleaning (balance caps per category)
//! and the features (products and balances per category) both need, millions of rows a
//! snapshot.

use crate::data::values::text_positions;
use polars::prelude::*;

/// Each holding's category as `category_of` names it (from the category's text): none for a
/// product not in the catalog, without a category, or whose category `category_of` leaves out.
/// A product listed twice takes its last listing with a named category. `category_of` is
/// called once per such listing, in the catalog's order.
pub fn holding_categories<T: Copy>(
    catalog: &DataFrame,
    holdings: &DataFrame,
    mut category_of: impl FnMut(&str) -> Option<T>,
) -> PolarsResult<Vec<Option<T>>> {
    let products = catalog.column("product_id")?.str()?;
    let categories = catalog.column("category")?.str()?;
    let (known, named): (Vec<&str>, Vec<T>) = products
        .iter()
        .zip(categories.iter())
        .filter_map(|(product, category)| Some((product?, category_of(category?)?)))
        .unzip();
    Ok(text_positions(holdings.column("product_id")?.str()?, &known)
        .into_iter()
        .map(|listing| listing.map(|l| named[l as usize]))
        .collect())
}

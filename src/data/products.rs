//! Each holding's product looked up in the catalog: what cleaning (balance caps per category)
//! and the features (products and balances per category) both need, millions of rows a
//! snapshot.

use crate::data::values::looked_up;
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
    // Named only for a listing with a product: `category_of` may count what it names.
    let listings = products
        .iter()
        .zip(categories.iter())
        .map(|(product, category)| (product, product.and(category).and_then(&mut category_of)));
    Ok(looked_up(holdings.column("product_id")?.str()?, listings))
}

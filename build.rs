//! Lets the `bankml` binary find XGBoost's shared library when run directly (not only through
//! `cargo run`): an rpath to the folder where `xgboost_lib-sys` built it, plus `$ORIGIN` for a
//! copy installed beside the binary.

use std::path::{Path, PathBuf};

/// `target/<profile>/build/xgboost_lib-sys-*/out/lib` holding `libxgboost.so`, newest first.
fn xgboost_lib_dir(out_dir: &Path) -> Option<PathBuf> {
    let build_dir = out_dir.parent()?.parent()?;
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(build_dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("xgboost_lib-sys-"))
        .map(|e| e.path().join("out/lib"))
        .filter(|lib| lib.join("libxgboost.so").exists())
        .filter_map(|lib| Some((std::fs::metadata(lib.join("libxgboost.so")).ok()?.modified().ok()?, lib)))
        .collect();
    found.sort();
    found.pop().map(|(_, lib)| lib)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN");
    if let Some(out_dir) = std::env::var_os("OUT_DIR")
        && let Some(lib) = xgboost_lib_dir(Path::new(&out_dir))
    {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{}", lib.display());
    }
}

//! Rebuild the crate when a migration file changes: `sqlx::migrate!` embeds the SQL at compile
//! time, and cargo does not otherwise know that `migrations/` is an input.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

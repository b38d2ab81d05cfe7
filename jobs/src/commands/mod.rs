//! One module per built subcommand: it turns parsed arguments into a stage's config, runs the
//! stage, and prints the result.

pub mod checksum;
pub mod control;
pub mod dump;
pub mod import;
pub mod quickstart;
pub mod relay;
pub mod run;
mod signals;
pub mod stream;

pub use signals::until_interrupted;

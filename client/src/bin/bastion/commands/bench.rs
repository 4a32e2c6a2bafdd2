//! `bastion bench`: not implemented in this version; it says so and exits with 1.

use crate::args::BenchArgs;
use crate::context::Context;
use crate::exit::Exit;

pub fn run(_ctx: &Context, _args: BenchArgs) -> anyhow::Result<Exit> {
    anyhow::bail!(
        "`bastion bench` is not implemented in this version (no load was sent); the load harness lands with the benchmarks work"
    )
}

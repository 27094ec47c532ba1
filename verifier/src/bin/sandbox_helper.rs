//! `verifier-sandbox-helper __sandbox-helper CGROUPS` (configuration on stdin): the namespace sandbox's helper as its own
//! small executable. `verifier` can play the same role (a hidden subcommand), but starting this
//! binary costs about a millisecond less per run: it carries no HTTP server, grader or wasm
//! runtime to map and relocate.

fn main() {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next(), args.next()) {
        (Some(verifier::sandbox::linux_ns::helper::HELPER_ARG), Some(cgroups), None) => {
            std::process::exit(verifier::sandbox::linux_ns::helper::helper_main(&cgroups))
        }
        _ => {
            eprintln!(
                "usage: verifier-sandbox-helper {} CGROUPS_JSON (started by the verifier, not by hand)",
                verifier::sandbox::linux_ns::helper::HELPER_ARG
            );
            std::process::exit(2)
        }
    }
}

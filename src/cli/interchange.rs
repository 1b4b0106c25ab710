//! `netnomos export` and `netnomos import`: packs to and from reference run directories.

use std::path::PathBuf;
use std::process::ExitCode;

use rulepacks::reference::{FieldSource, export as export_dir, import as import_dir};

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The pack.
    #[arg(long, value_name = "FILE")]
    pub pack: PathBuf,
    /// The run directory to write (rules.json, manifest.json, fields.json, interpreted_rules.clj).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// A reference run directory, or a rules.json.
    #[arg(long, value_name = "PATH")]
    pub rules: PathBuf,
    /// Take the field schema from this pack (needed for a plain rules.json to have domains).
    #[arg(long, value_name = "FILE")]
    pub fields_from: Option<PathBuf>,
    /// Directory to write the pack into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Name of the new pack (default: the exported pack's, or the directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Version of the new pack.
    #[arg(long)]
    pub version: Option<String>,
}

pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let pack = super::load_pack(&args.pack)?;
    for path in export_dir(&pack, &args.out)? {
        crate::outln!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let base = args
        .fields_from
        .as_deref()
        .map(super::load_pack)
        .transpose()?;
    let source = match &base {
        Some(p) => FieldSource::Pack(p),
        None => FieldSource::Automatic,
    };
    let read =
        |version: Option<&str>| import_dir(&args.rules, source, args.name.as_deref(), version);
    let mut pack = read(args.version.as_deref())?;
    // A new pack (not an export of ours) takes the next free version, as `mine` does.
    let is_new = pack.provenance.imported_from.is_some();
    if args.version.is_none() && is_new && args.out.join(pack.file_name()).exists() {
        pack = read(Some(&miner::mine::next_version(&args.out, &pack.name)))?;
    }
    let path = args.out.join(pack.file_name());
    let text_path = args.out.join(format!("{}.rules.txt", pack.id()));
    if text_path.exists() {
        anyhow::bail!(
            "{} already exists; packs are immutable, so choose a new --version",
            text_path.display()
        );
    }
    pack.write_new(&path)?;
    rulepacks::pack::write_atomic(&text_path, super::rules_text(&pack).as_bytes())?;
    tracing::info!("{}: {} rules, {}", pack.id(), pack.rules.len(), pack.hash);
    crate::outln!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}

//! `kubelite image`: import, list and remove images in the node's image store
//! (`<data-dir>/agent/images`), the same store the node agent runs containers from. Safe to use
//! while the server runs (the store locks itself). Archives put in `<data-dir>/images/` are
//! imported by the server automatically; `import` is for doing it by hand.

use anyhow::Context;
use clap::{Args, Subcommand};
use kubelite_runtime::images::ImageStore;
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Subcommand, Debug, Clone)]
pub enum ImageCommand {
    /// Import images from OCI image layout or `docker save` tarballs (plain or gzip).
    Import {
        #[command(flatten)]
        store: StoreArgs,
        /// Archives to import.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// List images.
    #[command(alias = "list")]
    Ls {
        #[command(flatten)]
        store: StoreArgs,
        /// Print full image ids.
        #[arg(long)]
        no_trunc: bool,
        /// Print references only.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Remove images (by reference, id or id prefix) and the content only they used.
    #[command(alias = "rmi")]
    Rm {
        #[command(flatten)]
        store: StoreArgs,
        /// Images to remove.
        #[arg(required = true, value_name = "REF")]
        refs: Vec<String>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// The server's data directory (the store is <data-dir>/agent/images).
    #[arg(long, default_value = "/var/lib/kubelite", env = "KUBELITE_DATA_DIR")]
    pub data_dir: PathBuf,
}

impl StoreArgs {
    fn open(&self) -> anyhow::Result<ImageStore> {
        let root = store_root(&self.data_dir);
        ImageStore::open(&root)
            .with_context(|| format!("opening the image store {}", root.display()))
    }
}

/// Where the store of a data directory lives (as the agent opens it).
pub fn store_root(data_dir: &Path) -> PathBuf {
    data_dir.join("agent").join("images")
}

pub fn run(args: ImageArgs) -> anyhow::Result<()> {
    match args.command {
        ImageCommand::Import { store, files } => {
            let store = store.open()?;
            let mut failed = 0;
            for f in &files {
                match store.import_archive(f) {
                    Ok(refs) => {
                        for r in refs {
                            println!("imported {r}");
                        }
                    }
                    Err(e) => {
                        eprintln!("error: importing {}: {e}", f.display());
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} archives could not be imported", files.len());
            }
            Ok(())
        }
        ImageCommand::Ls {
            store,
            no_trunc,
            quiet,
        } => {
            let images = store.open()?.list()?;
            if quiet {
                for i in &images {
                    println!("{}", i.reference);
                }
                return Ok(());
            }
            let rows: Vec<[String; 3]> = images
                .iter()
                .map(|i| {
                    let id = i.id.trim_start_matches("sha256:");
                    let id = if no_trunc {
                        i.id.clone()
                    } else {
                        id.chars().take(12).collect()
                    };
                    [i.reference.clone(), id, human_size(i.size)]
                })
                .collect();
            let header = ["IMAGE".to_string(), "IMAGE ID".into(), "SIZE".into()];
            let width = |c: usize| {
                rows.iter()
                    .map(|r| r[c].len())
                    .chain([header[c].len()])
                    .max()
                    .unwrap_or(0)
            };
            let (w0, w1) = (width(0), width(1));
            for r in std::iter::once(&header).chain(rows.iter()) {
                println!("{:<w0$}   {:<w1$}   {}", r[0], r[1], r[2]);
            }
            Ok(())
        }
        ImageCommand::Rm { store, refs } => {
            let store = store.open()?;
            let mut failed = 0;
            for r in &refs {
                match store.remove(r) {
                    Ok(true) => println!("deleted {r}"),
                    Ok(false) => {
                        eprintln!("error: no such image: {r}");
                        failed += 1;
                    }
                    Err(e) => {
                        eprintln!("error: removing {r}: {e}");
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} images could not be removed", refs.len());
            }
            Ok(())
        }
    }
}

/// `2.1MB`, like `crictl images` (decimal units).
fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + UNITS[u]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ImageArgs,
    }

    #[test]
    fn parses_and_formats() {
        let cli =
            Cli::try_parse_from(["image", "import", "a.tar", "b.tgz", "--data-dir", "/d"]).unwrap();
        match cli.args.command {
            ImageCommand::Import { store, files } => {
                assert_eq!(store.data_dir, Path::new("/d"));
                assert_eq!(files.len(), 2);
            }
            _ => panic!("wrong subcommand"),
        }
        let cli = Cli::try_parse_from(["image", "rm", "busybox"]).unwrap();
        assert!(matches!(cli.args.command, ImageCommand::Rm { .. }));
        assert!(Cli::try_parse_from(["image", "rm"]).is_err());
        assert!(Cli::try_parse_from(["image", "ls", "-q"]).is_ok());
        assert_eq!(store_root(Path::new("/d")), Path::new("/d/agent/images"));
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(2_140_160), "2.14MB");
        assert_eq!(human_size(1_000_000), "1MB");
    }
}

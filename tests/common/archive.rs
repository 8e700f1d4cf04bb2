//! Image archives made from OCI layouts: `oci-archive` and `docker-archive` (docker save).

use std::fs;
use std::io::Read;
use std::path::Path;

use super::skopeo::{skopeo, skopeo_checked};

/// Writes the OCI layout at `layout_dir`, with every name in its `index.json`, as an
/// uncompressed tar at `archive`, the form skopeo reads as `oci-archive:FILE:TAG`.
///
/// Entries are sorted and carry fixed owners, modes and times, so the archive is deterministic.
pub fn write_oci_archive(layout_dir: &Path, archive: &Path) {
    let mut builder = tar::Builder::new(Vec::new());
    append_dir(&mut builder, "blobs/");
    append_dir(&mut builder, "blobs/sha256/");

    let mut blobs: Vec<_> = fs::read_dir(layout_dir.join("blobs/sha256"))
        .unwrap_or_else(|error| panic!("failed to list blobs in {}: {error}", layout_dir.display()))
        .map(|entry| {
            entry
                .expect("failed to read a blob directory entry")
                .file_name()
        })
        .collect();
    blobs.sort();
    for blob in blobs {
        let name = format!("blobs/sha256/{}", blob.to_string_lossy());
        append_file(&mut builder, layout_dir, &name);
    }
    append_file(&mut builder, layout_dir, "index.json");
    append_file(&mut builder, layout_dir, "oci-layout");

    let tar = builder.into_inner().expect("tar into memory cannot fail");
    fs::write(archive, tar)
        .unwrap_or_else(|error| panic!("failed to write {}: {error}", archive.display()));
}

/// Converts `oci:LAYOUT_DIR:LAYOUT_TAG` into a docker save archive at `archive`, tagged
/// `repo_tag` (such as `example/app:1.0`) in its `manifest.json`, with `skopeo copy`.
///
/// skopeo writes the classic layout: `manifest.json` with `Config`, `RepoTags` and `Layers`,
/// the configuration as `<hex>.json` and each layer uncompressed as `<hex>.tar`. skopeo
/// names the tag `docker.io/example/app:1.0`, so `RepoTags` is then rewritten to `repo_tag`
/// exactly as given, which is how `docker save` writes a familiar name.
// NOTE: Docker 25 and later save archives that are also OCI layouts, with `index.json` and
// `blobs/`. Docker also fills the `repositories` file that skopeo leaves as `{}`. Archives
// made here cover neither case.
pub fn write_docker_archive(layout_dir: &Path, layout_tag: &str, archive: &Path, repo_tag: &str) {
    // The docker-archive transport refuses to write over an existing file.
    if archive.exists() {
        fs::remove_file(archive)
            .unwrap_or_else(|error| panic!("failed to remove {}: {error}", archive.display()));
    }
    skopeo_checked(
        skopeo()
            .arg("copy")
            .arg(format!("oci:{}:{layout_tag}", layout_dir.display()))
            .arg(format!("docker-archive:{}:{repo_tag}", archive.display())),
    );
    set_repo_tags(archive, &[repo_tag]);
}

/// Rewrites `RepoTags` of the first image in a docker save archive's `manifest.json`,
/// copying every other member unchanged.
pub fn set_repo_tags(archive: &Path, repo_tags: &[&str]) {
    let original = fs::read(archive)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", archive.display()));
    let mut reader = tar::Archive::new(original.as_slice());
    let mut builder = tar::Builder::new(Vec::new());
    let mut found = false;
    // Raw entries keep long-name records as members of their own, so they are copied as-is.
    let entries = reader
        .entries()
        .expect("failed to read the docker archive")
        .raw(true);
    for entry in entries {
        let mut entry = entry.expect("failed to read a docker archive member");
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .expect("failed to read a docker archive member");
        if entry.path().expect("invalid member path").as_os_str() == "manifest.json" {
            let mut manifest: serde_json::Value =
                serde_json::from_slice(&data).expect("manifest.json is not JSON");
            manifest[0]["RepoTags"] = serde_json::json!(repo_tags);
            data = serde_json::to_vec(&manifest).unwrap();
            header.set_size(data.len() as u64);
            header.set_cksum();
            found = true;
        }
        builder
            .append(&header, data.as_slice())
            .expect("tar into memory cannot fail");
    }
    assert!(found, "{} has no manifest.json", archive.display());
    let rewritten = builder.into_inner().expect("tar into memory cannot fail");
    fs::write(archive, rewritten)
        .unwrap_or_else(|error| panic!("failed to write {}: {error}", archive.display()));
}

fn header(entry_type: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    header
}

fn append_dir(builder: &mut tar::Builder<Vec<u8>>, name: &str) {
    let mut header = header(tar::EntryType::Directory, 0o755, 0);
    builder
        .append_data(&mut header, name, std::io::empty())
        .expect("tar into memory cannot fail");
}

fn append_file(builder: &mut tar::Builder<Vec<u8>>, layout_dir: &Path, name: &str) {
    let path = layout_dir.join(name);
    let data = fs::read(&path)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()));
    let mut header = header(tar::EntryType::Regular, 0o644, data.len() as u64);
    builder
        .append_data(&mut header, name, data.as_slice())
        .expect("tar into memory cannot fail");
}

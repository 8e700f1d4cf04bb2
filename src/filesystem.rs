//! The final filesystem of an image: layers merged in order, with whiteouts, opaque
//! directories and hard links applied as container runtimes apply them.
//!
//! The merge follows the OCI layer changeset rules and containerd's applier:
//!
//! - Whiteouts (`.wh.NAME`) and opaque markers (`.wh..wh..opq`) act on lower layers only, so
//!   they are applied before the entries of their own layer, wherever they sit in the tar.
//! - Entries are then applied in archive order: a later entry at the same path replaces the
//!   earlier one, a non-directory replacing a directory removes its subtree, and a directory
//!   over a directory keeps the children.
//! - Like containerd (`fs.RootPath`), the parent directory of each entry is resolved through
//!   the symlinks already in place, so `link/passwd` with `link -> /etc` writes `/etc/passwd`.
//!   The last path component is never followed.
//! - Missing parent directories are created implicitly, as runtimes do.

use crate::layer::{EntryKind, LayerEntry, LayerIndex, Whiteout, normalize_path, split_parent};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Maximum number of symlinks followed while resolving one path, the Linux limit
/// (`MAXSYMLINKS`).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// Mode of directories that runtimes create for missing parents.
const IMPLICIT_DIR_MODE: u32 = 0o755;

/// An entry of the final filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalEntry {
    /// Index of the layer that provides the entry.
    pub layer: usize,
    /// Index of the entry in that layer's `entries`, or `None` for a directory that the
    /// runtime creates implicitly (the root, or a missing parent).
    pub entry_index: Option<usize>,
    /// For a hard link: the kind of the file it links to.
    pub kind: EntryKind,
    /// For a hard link: the mode of the file it links to.
    pub mode: u32,
    /// For a symlink (or a hard link to one): the target as written. For another hard link:
    /// the absolute path of the file it links to.
    pub link_target: Option<String>,
    /// Whether the entry is a hard link; `kind` and `mode` are then those of its target.
    pub hard_link: bool,
}

/// Result of [`FinalFs::file_body`] for one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileBody<'a> {
    /// A regular file whose body the walk kept.
    Captured(&'a [u8]),
    /// A regular file whose body was not kept: its name is not captured, or it is a hard link
    /// to a file whose body was not captured. A check that needs the body must not treat this
    /// as an absent file.
    NotCaptured,
    /// No regular file: missing, a directory or device, a dangling link or a symlink loop.
    NoFile,
}

/// Children of a directory node, by file name.
///
/// The nodes are boxed because a B-tree allocates room for 11 entries even for one child, and
/// most directories of an image have only a few. Boxed, that room is 11 pointers instead of 11
/// nodes. With exactly sized paths, this cut the heap peak of a scan of the benchmark's
/// toolchain image from 14.8 MB to 11.1 MB.
type Children = BTreeMap<Box<str>, Box<Node>>;

/// One file of the merged tree. Only directories have children.
struct Node {
    entry: FinalEntry,
    body: Option<Arc<[u8]>>,
    children: Children,
}

impl Node {
    fn new(entry: FinalEntry, body: Option<Arc<[u8]>>) -> Self {
        Self {
            entry,
            body,
            children: BTreeMap::new(),
        }
    }

    /// Returns a directory node as runtimes create it for a missing parent (or the root).
    fn implicit_dir(layer: usize) -> Self {
        let entry = FinalEntry {
            layer,
            entry_index: None,
            kind: EntryKind::Directory,
            mode: IMPLICIT_DIR_MODE,
            link_target: None,
            hard_link: false,
        };
        Self::new(entry, None)
    }

    fn is_dir(&self) -> bool {
        self.entry.kind == EntryKind::Directory
    }

    /// Returns the node at a normalised absolute path below this one.
    fn find(&self, path: &str) -> Option<&Node> {
        let mut node = self;
        for part in components(path) {
            node = node.children.get(part)?;
        }
        Some(node)
    }

    fn find_mut(&mut self, path: &str) -> Option<&mut Node> {
        let mut node = self;
        for part in components(path) {
            node = node.children.get_mut(part)?;
        }
        Some(node)
    }

    /// Returns the directory at `dir`, creating missing directories and replacing
    /// non-directories in the way, as a runtime's `MkdirAll` would need.
    // NOTE: runtimes fail to apply a layer whose entry sits below a regular file. Replacing
    // the file keeps the tree consistent for such layers, which cannot run anyway.
    fn dir_mut(&mut self, dir: &str, layer: usize) -> &mut Node {
        let mut node = self;
        for part in components(dir) {
            let child = node
                .children
                .entry(Box::from(part))
                .or_insert_with(|| Box::new(Node::implicit_dir(layer)));
            if !child.is_dir() {
                **child = Node::implicit_dir(layer);
            }
            node = child;
        }
        node
    }

    /// Puts `node` at `path`: a directory over a directory keeps the children, anything
    /// else replaces the old node with its subtree. The root only takes a directory's entry.
    fn put(&mut self, path: &str, mut node: Node) {
        if path == "/" {
            if node.is_dir() {
                self.entry = node.entry.clone();
                self.children.extend(std::mem::take(&mut node.children));
            }
            return;
        }
        let (dir, name) = split_parent(path);
        let parent = self.dir_mut(dir, node.entry.layer);
        match parent.children.get_mut(name) {
            Some(existing) if existing.is_dir() && node.is_dir() => {
                existing.entry = node.entry.clone();
                existing.children.extend(std::mem::take(&mut node.children));
            }
            _ => {
                parent.children.insert(Box::from(name), Box::new(node));
            }
        }
    }
}

impl Drop for Node {
    /// Drops the subtree without recursion: paths can be thousands of directories deep.
    fn drop(&mut self) {
        let mut pending = vec![std::mem::take(&mut self.children)];
        while let Some(children) = pending.pop() {
            for (_, mut child) in children {
                pending.push(std::mem::take(&mut child.children));
            }
        }
    }
}

/// Splits a path into its parts, skipping empty and `.` parts.
fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/')
        .filter(|part| !part.is_empty() && *part != ".")
}

/// The merged view of all layers.
pub struct FinalFs {
    /// The root directory; every path is reached from it, one name at a time, so resolving
    /// a path costs time in proportion to its length.
    root: Node,
    /// Landing paths of entries written through a symlinked parent, by (layer, entry path).
    redirects: HashMap<(usize, String), String>,
    /// Kind and mode of the file each hard link entry links to, by (layer, entry index).
    hard_links: HashMap<(usize, usize), (EntryKind, u32)>,
}

impl Default for FinalFs {
    fn default() -> Self {
        Self {
            root: Node::implicit_dir(0),
            redirects: HashMap::new(),
            hard_links: HashMap::new(),
        }
    }
}

impl std::fmt::Debug for FinalFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinalFs")
            .field("entries", &self.entries().count())
            .field("hard_links", &self.hard_links.len())
            .finish_non_exhaustive()
    }
}

/// Handling of missing path components in [`FinalFs::walk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// Every component must exist; a missing one or a non-directory in the middle fails.
    Existing,
    /// Missing components are kept as written, as `fs.RootPath` does when a runtime creates
    /// a path.
    Create,
}

impl FinalFs {
    /// Merges `layers` (lowest first).
    pub fn build(layers: &[LayerIndex]) -> Self {
        let mut fs = FinalFs::default();
        for (layer, index) in layers.iter().enumerate() {
            fs.apply_layer(layer, index);
        }
        fs
    }

    /// Returns the entry at `path` without following symlinks. `path` is normalised lexically
    /// first (see [`normalize_path`]).
    pub fn entry(&self, path: &str) -> Option<&FinalEntry> {
        self.root
            .find(&normalize_path(path))
            .map(|node| &node.entry)
    }

    /// Returns every entry of the final filesystem with its path, the root first, then each
    /// directory before its children, children in byte order of their names.
    pub fn entries(&self) -> impl Iterator<Item = (String, &FinalEntry)> {
        let mut out = Vec::new();
        let mut pending: Vec<(String, &Node)> = vec![("/".to_string(), &self.root)];
        while let Some((path, node)) = pending.pop() {
            for (name, child) in node.children.iter().rev() {
                let child_path = if path == "/" {
                    format!("/{name}")
                } else {
                    format!("{path}/{name}")
                };
                pending.push((child_path, child));
            }
            out.push((path, &node.entry));
        }
        out.into_iter()
    }

    /// Follows symlinks in every component of `path`, staying inside the image root.
    /// Returns the resolved absolute path, or `None` when a link loops or dangles.
    ///
    /// Absolute link targets start again at the image root, `..` stops at the root, and at
    /// most [`MAX_SYMLINK_HOPS`] links are followed. A non-directory in the middle of the path
    /// also gives `None`.
    pub fn resolve(&self, path: &str) -> Option<String> {
        self.walk(path, Lookup::Existing)
    }

    /// Returns the captured body of the file at `path`, following symlinks. `None` covers both
    /// "no such file" and "body not captured"; use [`FinalFs::file_body`] to tell them apart.
    pub fn read_file(&self, path: &str) -> Option<&[u8]> {
        match self.file_body(path) {
            FileBody::Captured(body) => Some(body),
            FileBody::NotCaptured | FileBody::NoFile => None,
        }
    }

    /// Returns what is at `path` after following symlinks: a captured body, a regular file
    /// whose body was not kept, or no regular file.
    pub fn file_body(&self, path: &str) -> FileBody<'_> {
        let resolved = self.walk(path, Lookup::Existing);
        let Some(node) = resolved.and_then(|p| self.root.find(&p)) else {
            return FileBody::NoFile;
        };
        if node.entry.kind != EntryKind::File {
            return FileBody::NoFile;
        }
        match &node.body {
            Some(body) => FileBody::Captured(body),
            None => FileBody::NotCaptured,
        }
    }

    /// Tells whether the entry at `path` that layer `layer` added is still what the final
    /// filesystem has at `path` (not deleted, replaced or hidden by a later layer).
    ///
    /// `path` is the entry's path in its layer; for an entry written through a symlinked
    /// parent, the place it landed is checked. Whiteout markers are never present.
    pub fn is_present(&self, layer: usize, path: &str) -> bool {
        let path = normalize_path(path);
        let landed = self.redirects.get(&(layer, path.clone())).unwrap_or(&path);
        self.root
            .find(landed)
            .is_some_and(|node| node.entry.layer == layer && node.entry.entry_index.is_some())
    }

    /// Returns the kind and mode of the file that hard link entry `entry_index` of layer
    /// `layer` links to, or `None` when that entry is not a hard link.
    pub fn hard_link_kind_and_mode(
        &self,
        layer: usize,
        entry_index: usize,
    ) -> Option<(EntryKind, u32)> {
        self.hard_links.get(&(layer, entry_index)).copied()
    }

    fn apply_layer(&mut self, layer: usize, index: &LayerIndex) {
        let hidden = self.apply_whiteouts(index);
        let body_entries = last_entry_by_captured_path(index);
        for (position, entry) in index.entries.iter().enumerate() {
            if entry.whiteout().is_some() {
                continue;
            }
            let body = (body_entries.get(entry.path.as_str()) == Some(&position))
                .then(|| index.captured.get(&entry.path))
                .flatten()
                .map(|body| Arc::from(body.as_slice()));
            self.apply_entry(layer, position, entry, body, &hidden);
        }
    }

    /// Applies the layer's whiteouts and opaque markers to the lower layers. Returns a tree of
    /// the nodes they removed, where hard links of the same layer may still find their target.
    fn apply_whiteouts(&mut self, index: &LayerIndex) -> Node {
        let mut hidden = Node::implicit_dir(0);
        for entry in &index.entries {
            match entry.whiteout() {
                Some(Whiteout::Opaque { dir }) => {
                    let dir = self.resolve_for_create(dir);
                    if let Some(node) = self.root.find_mut(&dir) {
                        for (name, child) in std::mem::take(&mut node.children) {
                            hidden.put(&join_child(&dir, &name), *child);
                        }
                    }
                }
                Some(Whiteout::Remove { dir, name }) => {
                    // Runtimes join the name lexically, so `.wh.` and `.wh..` name the
                    // directory itself and its parent.
                    let dir = self.resolve_for_create(dir);
                    let target = normalize_path(&format!("{dir}/{name}"));
                    if let Some(node) = self.remove(&target) {
                        hidden.put(&target, node);
                    }
                }
                None => {}
            }
        }
        hidden
    }

    /// Removes the node at `path` with its subtree. For the root, only its children go.
    fn remove(&mut self, path: &str) -> Option<Node> {
        if path == "/" {
            let mut removed = Node::implicit_dir(0);
            removed.entry = self.root.entry.clone();
            removed.children = std::mem::take(&mut self.root.children);
            return Some(removed);
        }
        let (dir, name) = split_parent(path);
        self.root
            .find_mut(dir)?
            .children
            .remove(name)
            .map(|node| *node)
    }

    fn apply_entry(
        &mut self,
        layer: usize,
        position: usize,
        entry: &LayerEntry,
        body: Option<Arc<[u8]>>,
        hidden: &Node,
    ) {
        let path = self.landing_path(&entry.path);
        if path != entry.path {
            self.redirects
                .insert((layer, entry.path.clone()), path.clone());
        }
        let final_entry = FinalEntry {
            layer,
            entry_index: Some(position),
            kind: entry.kind,
            mode: entry.mode,
            link_target: entry.link_target.clone(),
            hard_link: false,
        };
        let mut node = Node::new(final_entry, body);
        if entry.kind == EntryKind::HardLink {
            self.fill_hard_link(&mut node, hidden);
            let effective = (node.entry.kind, node.entry.mode);
            self.hard_links.insert((layer, position), effective);
        }
        // containerd skips non-directories that resolve to the root.
        self.root.put(&path, node);
    }

    /// Fills a hard link node from the file it links to: first the same layer's earlier
    /// entries and the lower layers (both in the tree), then lower entries that this layer's
    /// whiteouts removed. A link to a missing file or to a directory keeps its own header,
    /// because runtimes fail to create it.
    fn fill_hard_link(&self, node: &mut Node, hidden: &Node) {
        node.entry.hard_link = true;
        let Some(target) = node.entry.link_target.as_deref() else {
            return;
        };
        let target = self.landing_path(target);
        let found = self.root.find(&target).or_else(|| hidden.find(&target));
        let Some(source) = found.filter(|n| !n.is_dir()) else {
            return;
        };
        node.entry.kind = source.entry.kind;
        node.entry.mode = source.entry.mode;
        node.entry.link_target = match source.entry.kind {
            EntryKind::Symlink => source.entry.link_target.clone(),
            _ => Some(target),
        };
        node.body = source.body.clone();
    }

    /// Returns where a runtime writes an entry at `path`: its parent resolved through the
    /// symlinks in place, then its own name, which is not followed.
    // NOTE: this is containerd's behaviour. Moby's classic overlay2 driver extracts each layer
    // into an empty directory, so there a symlinked parent from a lower layer is shadowed by a
    // real directory instead of followed.
    fn landing_path(&self, path: &str) -> String {
        let path = normalize_path(path);
        if path == "/" {
            return path;
        }
        let (dir, name) = split_parent(&path);
        let dir = self.resolve_for_create(dir);
        join_child(&dir, name)
    }

    /// Resolves a directory path the way a runtime does before creating something in it.
    /// A symlink loop makes the runtime fail; the lexical path is used then.
    fn resolve_for_create(&self, dir: &str) -> String {
        self.walk(dir, Lookup::Create)
            .unwrap_or_else(|| normalize_path(dir))
    }

    /// Resolves `path` one component at a time from the root, following every symlink met
    /// (the last component too).
    fn walk(&self, path: &str, lookup: Lookup) -> Option<String> {
        let mut pending: Vec<&str> = components(path).rev().collect();
        // The resolved components, each with its node (`None` once below a missing one).
        let mut resolved: Vec<(&str, Option<&Node>)> = Vec::new();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            if component == ".." {
                resolved.pop();
                continue;
            }
            let parent = resolved.last().map_or(Some(&self.root), |(_, node)| *node);
            let child = parent.and_then(|node| node.children.get(component));
            match child {
                Some(node) if node.entry.kind == EntryKind::Symlink => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return None;
                    }
                    let target = node.entry.link_target.as_deref().unwrap_or_default();
                    if target.starts_with('/') {
                        resolved.clear();
                    }
                    pending.extend(components(target).rev());
                }
                Some(node) if !node.is_dir() && !pending.is_empty() => {
                    if lookup == Lookup::Existing {
                        return None;
                    }
                    resolved.push((component, Some(node)));
                }
                Some(node) => resolved.push((component, Some(node))),
                None if lookup == Lookup::Existing => return None,
                None => resolved.push((component, None)),
            }
        }
        let parts: Vec<&str> = resolved.iter().map(|(name, _)| *name).collect();
        Some(crate::layer::join_absolute(&parts))
    }
}

fn join_child(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Maps each captured path to the last entry of the layer at that path: only that entry owns
/// the captured body.
fn last_entry_by_captured_path(index: &LayerIndex) -> HashMap<&str, usize> {
    let mut last = HashMap::new();
    for (position, entry) in index.entries.iter().enumerate() {
        if index.captured.contains_key(&entry.path) {
            last.insert(entry.path.as_str(), position);
        }
    }
    last
}

/// Returns the kind and mode a layer entry has once extracted: for a hard link, those of the
/// file it links to (looked up in the same layer first, then in the lower layers).
///
/// Checks call this for every entry. For layers produced by the walk, one merge resolves the
/// hard links of the whole slice, and the results are kept for later calls with the same
/// layers, recognised by [`LayerIndex::walk_id`] and the address and length of each entry
/// vector. For indexes built by hand (`walk_id` 0) each call merges again. A [`FinalFs`]
/// already built returns the same through [`FinalFs::hard_link_kind_and_mode`].
/// Out-of-range indices give `(EntryKind::File, 0)`.
pub fn effective_kind_and_mode(
    layers: &[LayerIndex],
    layer: usize,
    entry_index: usize,
) -> (EntryKind, u32) {
    let Some(entry) = layers.get(layer).and_then(|l| l.entries.get(entry_index)) else {
        return (EntryKind::File, 0);
    };
    if entry.kind != EntryKind::HardLink {
        return (entry.kind, entry.mode);
    }
    let fallback = (entry.kind, entry.mode);
    let Some(key) = HardLinkCacheKey::of(layers) else {
        let fs = FinalFs::build(layers);
        return fs
            .hard_link_kind_and_mode(layer, entry_index)
            .unwrap_or(fallback);
    };
    let mut cache = HARD_LINK_CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if cache.as_ref().is_none_or(|cached| cached.key != key) {
        let results = FinalFs::build(layers).hard_links;
        *cache = Some(HardLinkCache { key, results });
    }
    cache
        .as_ref()
        .and_then(|cached| cached.results.get(&(layer, entry_index)).copied())
        .unwrap_or(fallback)
}

/// Hard link results of the last `layers` slice given to [`effective_kind_and_mode`].
static HARD_LINK_CACHE: Mutex<Option<HardLinkCache>> = Mutex::new(None);

struct HardLinkCache {
    key: HardLinkCacheKey,
    results: HashMap<(usize, usize), (EntryKind, u32)>,
}

/// Identity of a `layers` slice: per layer, its walk id and the address and length of its
/// entries.
#[derive(PartialEq, Eq)]
struct HardLinkCacheKey(Vec<(u64, usize, usize)>);

impl HardLinkCacheKey {
    /// Returns `None` when a layer was built by hand, because its contents have no identity.
    fn of(layers: &[LayerIndex]) -> Option<Self> {
        layers
            .iter()
            .map(|l| {
                (l.walk_id != 0).then_some((
                    l.walk_id,
                    l.entries.as_ptr() as usize,
                    l.entries.len(),
                ))
            })
            .collect::<Option<Vec<_>>>()
            .map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind, mode: u32, link_target: Option<&str>) -> LayerEntry {
        LayerEntry {
            path: path.to_string(),
            kind,
            mode,
            link_target: link_target.map(String::from),
            size: 0,
        }
    }

    fn file(path: &str, mode: u32) -> LayerEntry {
        entry(path, EntryKind::File, mode, None)
    }

    fn dir(path: &str) -> LayerEntry {
        entry(path, EntryKind::Directory, 0o755, None)
    }

    fn symlink(path: &str, target: &str) -> LayerEntry {
        entry(path, EntryKind::Symlink, 0o777, Some(target))
    }

    fn hard_link(path: &str, target: &str, mode: u32) -> LayerEntry {
        entry(path, EntryKind::HardLink, mode, Some(target))
    }

    fn layer(entries: Vec<LayerEntry>) -> LayerIndex {
        LayerIndex {
            entries,
            ..LayerIndex::default()
        }
    }

    fn layer_with_bodies(entries: Vec<LayerEntry>, bodies: &[(&str, &[u8])]) -> LayerIndex {
        let captured = bodies
            .iter()
            .map(|(path, body)| (path.to_string(), body.to_vec()))
            .collect();
        LayerIndex {
            entries,
            captured,
            ..LayerIndex::default()
        }
    }

    #[test]
    fn whiteout_removes_lower_file() {
        let layers = [
            layer(vec![dir("/etc"), file("/etc/shadow", 0o640)]),
            layer(vec![file("/etc/.wh.shadow", 0)]),
        ];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.entry("/etc/shadow"), None);
        assert!(!fs.is_present(0, "/etc/shadow"));
        assert!(fs.entry("/etc").is_some());
    }

    #[test]
    fn whiteout_is_not_a_file() {
        let layers = [layer(vec![file("/etc/.wh.shadow", 0)])];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.entry("/etc/.wh.shadow"), None);
        assert!(!fs.is_present(0, "/etc/.wh.shadow"));
    }

    #[test]
    fn whiteout_keeps_same_layer_file() {
        // The marker comes after the file in the tar, but whiteouts only act on lower layers.
        let layers = [
            layer(vec![file("/a", 0o644)]),
            layer(vec![file("/a", 0o600), file("/.wh.a", 0)]),
        ];
        let fs = FinalFs::build(&layers);
        assert!(fs.is_present(1, "/a"));
        assert_eq!(fs.entry("/a").map(|e| e.mode), Some(0o600));
    }

    #[test]
    fn whiteout_removes_lower_subtree() {
        let layers = [
            layer(vec![
                dir("/opt"),
                dir("/opt/app"),
                file("/opt/app/bin", 0o755),
            ]),
            layer(vec![file("/opt/.wh.app", 0)]),
        ];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.entry("/opt/app"), None);
        assert_eq!(fs.entry("/opt/app/bin"), None);
        assert!(fs.entry("/opt").is_some());
    }

    #[test]
    fn whiteout_empty_name_removes_directory() {
        // `.wh.` names the directory itself once joined, as containerd's applier joins it.
        let layers = [
            layer(vec![dir("/opt"), file("/opt/a", 0o644)]),
            layer(vec![file("/opt/.wh.", 0)]),
        ];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.entry("/opt/a"), None);
        assert_eq!(fs.entry("/opt"), None);
    }

    #[test]
    fn opaque_hides_lower_children() {
        let layers = [
            layer(vec![
                dir("/etc"),
                file("/etc/old", 0o644),
                dir("/etc/sub"),
                file("/etc/sub/x", 0),
            ]),
            layer(vec![
                dir("/etc"),
                file("/etc/.wh..wh..opq", 0),
                file("/etc/new", 0o644),
            ]),
        ];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.entry("/etc/old"), None);
        assert_eq!(fs.entry("/etc/sub/x"), None);
        assert!(fs.is_present(1, "/etc/new"));
        assert!(fs.is_present(1, "/etc"));
    }

    #[test]
    fn opaque_keeps_siblings_of_directory() {
        let layers = [
            layer(vec![
                file("/etc/a", 0),
                file("/etcetera", 0),
                file("/var/b", 0),
            ]),
            layer(vec![file("/etc/.wh..wh..opq", 0)]),
        ];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.entry("/etc/a"), None);
        assert!(fs.entry("/etc").is_some());
        assert!(fs.is_present(0, "/etcetera"));
        assert!(fs.is_present(0, "/var/b"));
    }

    #[test]
    fn opaque_at_root_hides_everything_lower() {
        let layers = [
            layer(vec![file("/a", 0), file("/b/c", 0)]),
            layer(vec![file("/.wh..wh..opq", 0), file("/d", 0)]),
        ];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.entry("/a"), None);
        assert_eq!(fs.entry("/b"), None);
        assert!(fs.is_present(1, "/d"));
        assert!(fs.entry("/").is_some());
    }

    #[test]
    fn file_over_directory_removes_subtree() {
        let layers = [
            layer(vec![dir("/srv"), file("/srv/secret", 0o600)]),
            layer(vec![file("/srv", 0o644)]),
        ];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.entry("/srv").map(|e| e.kind), Some(EntryKind::File));
        assert_eq!(fs.entry("/srv/secret"), None);
        assert!(!fs.is_present(0, "/srv/secret"));
    }

    #[test]
    fn symlink_over_directory_removes_subtree() {
        let layers = [
            layer(vec![dir("/srv"), file("/srv/secret", 0o600)]),
            layer(vec![symlink("/srv", "/tmp")]),
        ];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.entry("/srv/secret"), None);
        assert!(!fs.is_present(0, "/srv/secret"));
    }

    #[test]
    fn same_layer_file_over_directory_removes_children() {
        let layers = [layer(vec![dir("/d"), file("/d/x", 0), file("/d", 0o644)])];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.entry("/d").map(|e| e.kind), Some(EntryKind::File));
        assert_eq!(fs.entry("/d/x"), None);
    }

    #[test]
    fn same_layer_later_entry_wins() {
        let layers = [layer(vec![file("/a", 0o644), file("/a", 0o4755)])];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.entry("/a").map(|e| e.mode), Some(0o4755));
        assert_eq!(fs.entry("/a").and_then(|e| e.entry_index), Some(1));
    }

    #[test]
    fn directory_over_directory_merges() {
        let layers = [
            layer(vec![dir("/etc"), file("/etc/hosts", 0o644)]),
            layer(vec![entry("/etc", EntryKind::Directory, 0o700, None)]),
        ];
        let fs = FinalFs::build(&layers);
        assert!(fs.is_present(0, "/etc/hosts"));
        assert_eq!(fs.entry("/etc").map(|e| e.mode), Some(0o700));
        assert!(fs.is_present(1, "/etc"));
        assert!(!fs.is_present(0, "/etc"));
    }

    #[test]
    fn later_layer_replaces_file() {
        let layers = [
            layer(vec![file("/a", 0o644)]),
            layer(vec![file("/a", 0o600)]),
        ];
        let fs = FinalFs::build(&layers);
        assert!(!fs.is_present(0, "/a"));
        assert!(fs.is_present(1, "/a"));
    }

    #[test]
    fn missing_parents_are_implicit_directories() {
        let layers = [layer(vec![file("/usr/local/bin/tool", 0o755)])];
        let fs = FinalFs::build(&layers);
        let parent = fs.entry("/usr/local");
        assert_eq!(parent.map(|e| e.kind), Some(EntryKind::Directory));
        assert_eq!(parent.and_then(|e| e.entry_index), None);
        assert!(!fs.is_present(0, "/usr/local"));
        assert_eq!(
            fs.resolve("/usr/local/bin/tool").as_deref(),
            Some("/usr/local/bin/tool")
        );
    }

    #[test]
    fn root_entry_sets_root_metadata() {
        let layers = [layer(vec![
            entry("/", EntryKind::Directory, 0o700, None),
            file("/a", 0),
        ])];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.entry("/").map(|e| e.mode), Some(0o700));
        assert!(fs.is_present(0, "/"));
        assert!(fs.is_present(0, "/a"));
    }

    #[test]
    fn hard_link_takes_lower_target_mode() {
        let layers = [
            layer(vec![file("/bin/su", 0o4755)]),
            layer(vec![hard_link("/usr/bin/su2", "/bin/su", 0o644)]),
        ];
        let fs = FinalFs::build(&layers);
        let link = fs.entry("/usr/bin/su2");
        assert_eq!(
            link.map(|e| (e.kind, e.mode)),
            Some((EntryKind::File, 0o4755))
        );
        assert_eq!(link.map(|e| e.hard_link), Some(true));
        assert_eq!(
            effective_kind_and_mode(&layers, 1, 0),
            (EntryKind::File, 0o4755)
        );
        assert_eq!(
            fs.hard_link_kind_and_mode(1, 0),
            Some((EntryKind::File, 0o4755))
        );
    }

    #[test]
    fn effective_kind_cache_follows_walk_ids() {
        let mut layers = vec![
            layer(vec![file("/bin/su", 0o4755)]),
            layer(vec![hard_link("/usr/bin/su2", "/bin/su", 0o644)]),
        ];
        layers[0].walk_id = 1001;
        layers[1].walk_id = 1002;
        let first = effective_kind_and_mode(&layers, 1, 0);
        layers[0] = layer(vec![file("/bin/su", 0o755)]);
        layers[0].walk_id = 1003;
        let second = effective_kind_and_mode(&layers, 1, 0);
        assert_eq!(first, (EntryKind::File, 0o4755));
        assert_eq!(second, (EntryKind::File, 0o755));
    }

    #[test]
    fn hard_link_prefers_same_layer_target() {
        let layers = [
            layer(vec![file("/a", 0o600)]),
            layer(vec![file("/a", 0o4755), hard_link("/b", "/a", 0o644)]),
        ];
        assert_eq!(
            effective_kind_and_mode(&layers, 1, 1),
            (EntryKind::File, 0o4755)
        );
    }

    #[test]
    fn hard_link_ignores_later_same_layer_entry() {
        let layers = [
            layer(vec![file("/a", 0o600)]),
            layer(vec![hard_link("/b", "/a", 0o644), file("/a", 0o4755)]),
        ];
        assert_eq!(
            effective_kind_and_mode(&layers, 1, 0),
            (EntryKind::File, 0o600)
        );
    }

    #[test]
    fn hard_link_finds_target_removed_by_own_whiteout() {
        let layers = [
            layer(vec![file("/a", 0o4755)]),
            layer(vec![file("/.wh.a", 0), hard_link("/b", "/a", 0o644)]),
        ];
        assert_eq!(
            effective_kind_and_mode(&layers, 1, 1),
            (EntryKind::File, 0o4755)
        );
    }

    #[test]
    fn hard_link_dangling_keeps_own_header() {
        let layers = [layer(vec![hard_link("/b", "/missing", 0o644)])];
        assert_eq!(
            effective_kind_and_mode(&layers, 0, 0),
            (EntryKind::HardLink, 0o644)
        );
    }

    #[test]
    fn effective_kind_of_plain_entry() {
        let layers = [layer(vec![file("/a", 0o640)])];
        assert_eq!(
            effective_kind_and_mode(&layers, 0, 0),
            (EntryKind::File, 0o640)
        );
        assert_eq!(effective_kind_and_mode(&layers, 3, 0), (EntryKind::File, 0));
    }

    #[test]
    fn hard_link_to_symlink_resolves() {
        let layers = [layer(vec![
            file("/etc/real", 0o644),
            symlink("/etc/link", "real"),
            hard_link("/etc/link2", "/etc/link", 0o644),
        ])];
        let fs = FinalFs::build(&layers);
        assert_eq!(
            fs.entry("/etc/link2").map(|e| e.kind),
            Some(EntryKind::Symlink)
        );
        assert_eq!(fs.resolve("/etc/link2").as_deref(), Some("/etc/real"));
    }

    #[test]
    fn resolve_relative_symlink() {
        let layers = [layer(vec![
            file("/usr/lib/os-release", 0),
            symlink("/etc/os-release", "../usr/lib/os-release"),
        ])];
        let fs = FinalFs::build(&layers);
        assert_eq!(
            fs.resolve("/etc/os-release").as_deref(),
            Some("/usr/lib/os-release")
        );
    }

    #[test]
    fn resolve_absolute_symlink_stays_in_root() {
        let layers = [layer(vec![file("/real", 0), symlink("/a/b/link", "/real")])];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.resolve("/a/b/link").as_deref(), Some("/real"));
    }

    #[test]
    fn resolve_dotdot_clamps_at_root() {
        let layers = [layer(vec![
            file("/etc/passwd", 0),
            symlink("/x", "../../../../etc/passwd"),
        ])];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.resolve("/x").as_deref(), Some("/etc/passwd"));
        assert_eq!(
            fs.resolve("/../../etc/passwd").as_deref(),
            Some("/etc/passwd")
        );
    }

    #[test]
    fn resolve_symlink_in_middle_component() {
        let layers = [layer(vec![
            file("/private/etc/passwd", 0),
            symlink("/etc", "private/etc"),
        ])];
        let fs = FinalFs::build(&layers);
        assert_eq!(
            fs.resolve("/etc/passwd").as_deref(),
            Some("/private/etc/passwd")
        );
    }

    #[test]
    fn resolve_loop_is_none() {
        let layers = [layer(vec![symlink("/a", "b"), symlink("/b", "a")])];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.resolve("/a"), None);
    }

    #[test]
    fn resolve_self_loop_is_none() {
        let layers = [layer(vec![symlink("/a", "/a/x")])];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.resolve("/a"), None);
    }

    #[test]
    fn resolve_dangling_is_none() {
        let layers = [layer(vec![symlink("/a", "/missing")])];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.resolve("/a"), None);
        assert_eq!(fs.resolve("/nothing"), None);
    }

    #[test]
    fn resolve_through_file_is_none() {
        let layers = [layer(vec![file("/f", 0)])];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.resolve("/f/x"), None);
    }

    #[test]
    fn resolve_hop_limit() {
        // A chain of links /l0 -> /l1 -> ... -> /lN -> /target needs N + 1 hops.
        let chain = |links: usize| {
            let mut entries = vec![file("/target", 0)];
            for i in 0..links {
                let next = if i + 1 == links {
                    "/target".to_string()
                } else {
                    format!("/l{}", i + 1)
                };
                entries.push(symlink(&format!("/l{i}"), &next));
            }
            FinalFs::build(&[layer(entries)])
        };
        assert_eq!(
            chain(MAX_SYMLINK_HOPS).resolve("/l0").as_deref(),
            Some("/target")
        );
        assert_eq!(chain(MAX_SYMLINK_HOPS + 1).resolve("/l0"), None);
    }

    #[test]
    fn read_file_follows_symlink() {
        let layers = [layer_with_bodies(
            vec![
                file("/usr/lib/os-release", 0o644),
                symlink("/etc/os-release", "../usr/lib/os-release"),
            ],
            &[("/usr/lib/os-release", b"ID=debian\n")],
        )];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.read_file("/etc/os-release"), Some(&b"ID=debian\n"[..]));
    }

    #[test]
    fn read_file_through_hard_link() {
        let layers = [layer_with_bodies(
            vec![
                file("/etc/passwd", 0o644),
                hard_link("/etc/group", "/etc/passwd", 0),
            ],
            &[("/etc/passwd", b"root:x:0:0::/root:/bin/sh\n")],
        )];
        let fs = FinalFs::build(&layers);
        assert_eq!(
            fs.read_file("/etc/group"),
            Some(&b"root:x:0:0::/root:/bin/sh\n"[..])
        );
    }

    #[test]
    fn file_body_not_captured_for_hard_link() {
        // The link has a captured name, but its target's body was never read.
        let layers = [layer(vec![
            file("/etc/passwd.new", 0o644),
            hard_link("/etc/passwd", "/etc/passwd.new", 0),
        ])];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.file_body("/etc/passwd"), FileBody::NotCaptured);
        assert_eq!(fs.read_file("/etc/passwd"), None);
    }

    #[test]
    fn file_body_missing_and_directory() {
        let layers = [layer(vec![dir("/etc")])];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.file_body("/etc/passwd"), FileBody::NoFile);
        assert_eq!(fs.file_body("/etc"), FileBody::NoFile);
    }

    #[test]
    fn body_belongs_to_last_entry_only() {
        // The walk keeps the body of the last entry at a path. An earlier entry that landed
        // elsewhere, through a symlink that changed in between, must not get it.
        let layers = [layer_with_bodies(
            vec![
                symlink("/d", "/one"),
                file("/d/passwd", 0o644),
                symlink("/d", "/two"),
                file("/d/passwd", 0o644),
            ],
            &[("/d/passwd", b"second")],
        )];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.file_body("/one/passwd"), FileBody::NotCaptured);
        assert_eq!(fs.file_body("/two/passwd"), FileBody::Captured(b"second"));
    }

    #[test]
    fn read_file_removed_by_later_layer() {
        let layers = [
            layer_with_bodies(vec![file("/etc/passwd", 0o644)], &[("/etc/passwd", b"x")]),
            layer(vec![file("/etc/.wh.passwd", 0)]),
        ];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.read_file("/etc/passwd"), None);
        assert_eq!(fs.file_body("/etc/passwd"), FileBody::NoFile);
    }

    #[test]
    fn entry_through_symlinked_parent_lands_at_target() {
        let layers = [
            layer_with_bodies(vec![file("/etc/passwd", 0o644)], &[("/etc/passwd", b"old")]),
            layer(vec![symlink("/link", "/etc")]),
            layer_with_bodies(
                vec![file("/link/passwd", 0o644)],
                &[("/link/passwd", b"new")],
            ),
        ];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.read_file("/etc/passwd"), Some(&b"new"[..]));
        assert!(fs.is_present(2, "/link/passwd"));
        assert!(!fs.is_present(0, "/etc/passwd"));
        assert_eq!(fs.entry("/link").map(|e| e.kind), Some(EntryKind::Symlink));
    }

    #[test]
    fn whiteout_through_symlinked_parent() {
        let layers = [
            layer(vec![file("/etc/shadow", 0o640), symlink("/link", "/etc")]),
            layer(vec![file("/link/.wh.shadow", 0)]),
        ];
        let fs = FinalFs::build(&layers);
        assert_eq!(fs.entry("/etc/shadow"), None);
    }

    #[test]
    fn deep_tree_builds_and_drops_on_small_stack() {
        // 2000 nested directories: recursion per level in drop or lookup would overflow a
        // 256 KiB stack.
        let deep = "/d".repeat(2000);
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let layers = [
                    layer(vec![
                        file(&format!("{deep}/f"), 0o644),
                        symlink("/l", &deep),
                    ]),
                    layer(vec![file("/.wh.d", 0)]),
                ];
                let fs = FinalFs::build(&layers);
                let resolved = FinalFs::build(&layers[..1]).resolve("/l/f");
                (
                    fs.entry("/d").is_none(),
                    resolved == Some(format!("{deep}/f")),
                )
            })
            .expect("spawn thread");
        let (removed, resolved) = handle.join().expect("deep tree thread");
        assert!(removed);
        assert!(resolved);
    }

    #[test]
    fn entries_lists_final_paths() {
        let layers = [
            layer(vec![file("/a", 0), file("/b", 0)]),
            layer(vec![file("/.wh.a", 0)]),
        ];
        let fs = FinalFs::build(&layers);
        let paths: Vec<String> = fs.entries().map(|(path, _)| path).collect();
        assert_eq!(paths, vec!["/", "/b"]);
    }
}

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
//!
//! # Memory
//!
//! The tree has a node for every file of the image, so the size of a node decides how memory
//! grows with the image. Nodes are kept in one vector and refer to each other by index, and
//! one hash table finds a child by its parent and name. A node copies nothing from its entry:
//! it names the entry, and the layer index, which lives as long as the tree, has the name,
//! kind, mode and link target. Only implicit directories and hard links keep text in the tree.
//! On the toolchain image of `docs/benchmarks.md`, the tree takes about 32 bytes per node,
//! against about 200 bytes for a tree of boxed nodes with a map of owned names per directory.

use crate::layer::{
    EntryKind, LayerEntry, LayerIndex, Whiteout, join_child, normalize_path, split_parent,
};
use hashbrown::HashTable;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

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

/// Index of a node in [`Tree::nodes`].
type NodeId = u32;

/// No node: the end of a sibling list, or the parent of a node outside any tree.
const NO_NODE: NodeId = NodeId::MAX;

/// The root directory of the final filesystem.
const ROOT: NodeId = 0;

/// A string stored in [`Tree::text`], by byte range.
#[derive(Debug, Clone, Copy, Default)]
struct Text {
    start: u32,
    len: u32,
}

/// The entry that a node shows, as one number: entries are numbered through all layers in
/// order, and the numbers after them stand for the implicit directories of each layer (see
/// [`Tree::starts`]). Kind, mode and link target are read from the layer index, and for a hard
/// link from [`Tree::hard_links`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meta(u32);

/// One file of a tree. Only directories have children, kept as a list of siblings. A node's
/// name is its entry's name, unless [`Tree::names`] has one for it.
#[derive(Debug)]
struct Node {
    parent: NodeId,
    first_child: NodeId,
    next_sibling: NodeId,
    previous_sibling: NodeId,
    meta: Meta,
}

/// The file that a hard link entry links to, as far as the link shows it.
#[derive(Debug, Clone, Copy)]
struct HardLink {
    kind: EntryKind,
    mode: u32,
    /// The target in [`Tree::text`]. A link to a symlink takes the symlink's target, and a
    /// link to another file takes that file's path. A link to nothing keeps its own.
    target: Option<Text>,
}

/// Nodes of the final filesystem and of the trees that contain what a layer's whiteouts remove.
/// Every tree starts at a root node without parent. The final filesystem's root is [`ROOT`].
struct Tree<'a> {
    /// The merged layers, whose entries the nodes show.
    layers: &'a [LayerIndex],
    nodes: Vec<Node>,
    /// Nodes of discarded subtrees, reused before the vector grows.
    free: Vec<NodeId>,
    /// Names of the nodes whose entry does not give their name: implicit directories.
    names: HashMap<NodeId, Text>,
    /// The number of the first entry of each layer in a [`Meta`], then the number of all
    /// entries. The implicit directories of layer `L` have that number plus `L`.
    starts: Vec<u32>,
    /// The file each hard link entry links to, by its [`Meta`].
    hard_links: HashMap<u32, HardLink>,
    /// The strings of `names` and `hard_links`. Text is only appended, so a [`Text`] stays
    /// valid.
    text: String,
    /// Every node that has a parent, found by the hash of its parent and name.
    by_name: HashTable<NodeId>,
    hasher: RandomState,
    /// Captured bodies of regular files, by node.
    bodies: HashMap<NodeId, Arc<[u8]>>,
    /// Set when a node id, text offset or index did not fit in 32 bits.
    overflowed: bool,
}

fn name_hash(hasher: &RandomState, parent: NodeId, name: &str) -> u64 {
    hasher.hash_one((parent, name))
}

/// The parts of a [`Tree`] that give a node's name, borrowed apart from the hash table that
/// needs them.
struct NameSource<'t> {
    layers: &'t [LayerIndex],
    starts: &'t [u32],
    nodes: &'t [Node],
    names: &'t HashMap<NodeId, Text>,
    text: &'t str,
}

impl<'t> NameSource<'t> {
    fn name(&self, id: NodeId) -> &'t str {
        if let Some(name) = self.names.get(&id) {
            return text_at(self.text, *name);
        }
        let meta = self.nodes[id as usize].meta;
        entry_of(self.layers, self.starts, meta).map_or("", |entry| entry.name)
    }
}

fn text_at(text: &str, range: Text) -> &str {
    let start = range.start as usize;
    text.get(start..start + range.len as usize)
        .unwrap_or_default()
}

/// Returns the layer that `meta` belongs to and the position of its entry there, which is
/// `None` for an implicit directory.
fn locate(starts: &[u32], meta: Meta) -> (u32, Option<u32>) {
    let total = starts.last().copied().unwrap_or(0);
    if meta.0 >= total {
        return (meta.0 - total, None);
    }
    // Empty layers share their start with the next one, and the last layer starting at or
    // before the number is the one that has the entry.
    let layer = starts
        .partition_point(|&start| start <= meta.0)
        .saturating_sub(1);
    let start = starts.get(layer).copied().unwrap_or(0);
    (layer as u32, Some(meta.0 - start))
}

/// Returns the layer entry that `meta` shows, or `None` for an implicit directory.
fn entry_of<'l>(layers: &'l [LayerIndex], starts: &[u32], meta: Meta) -> Option<LayerEntry<'l>> {
    let (layer, position) = locate(starts, meta);
    layers
        .get(layer as usize)?
        .entries()
        .get(position? as usize)
}

impl<'a> Tree<'a> {
    /// Returns a tree of entries of `layers` with only the root directory, sized for `nodes`
    /// nodes.
    fn with_capacity(layers: &'a [LayerIndex], nodes: usize) -> Self {
        let mut starts = Vec::with_capacity(layers.len() + 1);
        let mut total: u64 = 0;
        for layer in layers {
            starts.push(total as u32);
            total += layer.entries().len() as u64;
        }
        starts.push(total as u32);
        // Every number, implicit directories of the last layer included, must fit.
        let overflowed = total + layers.len() as u64 >= u64::from(u32::MAX);
        let mut tree = Self {
            layers,
            starts,
            nodes: Vec::with_capacity(nodes),
            free: Vec::new(),
            names: HashMap::new(),
            hard_links: HashMap::new(),
            text: String::new(),
            by_name: HashTable::with_capacity(nodes),
            hasher: RandomState::new(),
            bodies: HashMap::new(),
            overflowed,
        };
        let root = tree.implicit_dir(0);
        tree.new_node(root);
        tree
    }

    /// Returns the [`Meta`] of entry `position` of layer `layer`.
    fn entry_meta(&mut self, layer: u32, position: usize) -> Meta {
        let number = self.entry_number(layer as usize, position);
        Meta(number.unwrap_or_else(|| {
            self.overflowed = true;
            u32::MAX
        }))
    }

    /// Returns the number of entry `position` of layer `layer`, or `None` when the layer has
    /// no such entry or the number does not fit in 32 bits.
    fn entry_number(&self, layer: usize, position: usize) -> Option<u32> {
        let start = *self.starts.get(layer)?;
        if position >= self.layers.get(layer)?.entries().len() {
            return None;
        }
        u32::try_from(u64::from(start) + position as u64).ok()
    }

    /// Returns the [`Meta`] of a directory that runtimes create for a missing parent (or the
    /// root) while applying layer `layer`.
    fn implicit_dir(&self, layer: u32) -> Meta {
        let total = self.starts.last().copied().unwrap_or(0);
        Meta(total.saturating_add(layer))
    }

    /// Returns the layer whose entry, or implicit directory, `id` shows.
    fn layer_of(&self, id: NodeId) -> u32 {
        locate(&self.starts, self.meta(id)).0
    }

    // The two accessors index the vector directly: a `NodeId` is only ever made by
    // `new_node`, and nodes are never removed from the vector, so every id is in range.
    fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id as usize]
    }

    fn meta(&self, id: NodeId) -> Meta {
        self.node(id).meta
    }

    /// Returns the kind and mode of the file that `id` shows. For a hard link they are those
    /// of the file it links to, when the merge found it.
    fn kind_and_mode(&self, id: NodeId) -> (EntryKind, u32) {
        let meta = self.meta(id);
        let Some(entry) = entry_of(self.layers, &self.starts, meta) else {
            return (EntryKind::Directory, IMPLICIT_DIR_MODE);
        };
        if entry.kind == EntryKind::HardLink {
            if let Some(link) = self.hard_links.get(&meta.0) {
                return (link.kind, link.mode);
            }
        }
        (entry.kind, entry.mode)
    }

    fn kind(&self, id: NodeId) -> EntryKind {
        self.kind_and_mode(id).0
    }

    fn is_dir(&self, id: NodeId) -> bool {
        self.kind(id) == EntryKind::Directory
    }

    /// Tells whether `id` shows a hard link entry.
    fn is_hard_link(&self, id: NodeId) -> bool {
        entry_of(self.layers, &self.starts, self.meta(id))
            .is_some_and(|entry| entry.kind == EntryKind::HardLink)
    }

    /// Returns the link target of the entry that `id` shows.
    fn link_target(&self, id: NodeId) -> Option<&str> {
        let meta = self.meta(id);
        let entry = entry_of(self.layers, &self.starts, meta)?;
        if entry.kind == EntryKind::HardLink {
            let link = self.hard_links.get(&meta.0)?;
            return link.target.map(|target| self.text(target));
        }
        entry.link_target
    }

    /// Converts an index or offset to the 32 bits that nodes store. One that does not fit
    /// marks the tree as overflowed and becomes `u32::MAX`.
    fn compact(&mut self, value: usize) -> u32 {
        u32::try_from(value).unwrap_or_else(|_| {
            self.overflowed = true;
            u32::MAX
        })
    }

    /// Tells whether the tree is too close to 32-bit node ids or text offsets to take one
    /// more entry, and marks it as overflowed if so. One entry adds at most one node per
    /// component of its resolved path and that path's bytes: with 40 symlinks of at most
    /// 4096 bytes followed, under 100,000 nodes and 200 KiB.
    fn full(&mut self) -> bool {
        const NODE_MARGIN: usize = 1 << 20;
        const TEXT_MARGIN: usize = 1 << 24;
        let limit = u32::MAX as usize;
        if self.nodes.len() > limit - NODE_MARGIN || self.text.len() > limit - TEXT_MARGIN {
            self.overflowed = true;
        }
        self.overflowed
    }

    fn text(&self, text: Text) -> &str {
        text_at(&self.text, text)
    }

    fn name_source(&self) -> NameSource<'_> {
        NameSource {
            layers: self.layers,
            starts: &self.starts,
            nodes: &self.nodes,
            names: &self.names,
            text: &self.text,
        }
    }

    fn name(&self, id: NodeId) -> &str {
        self.name_source().name(id)
    }

    fn store_text(&mut self, value: &str) -> Text {
        let start = self.compact(self.text.len());
        let len = self.compact(value.len());
        self.text.push_str(value);
        Text { start, len }
    }

    /// Gives `id` the name `name` of its own, for when its entry does not give it. While `id` is
    /// in the hash table, `name` must be the name that the table files it under.
    fn set_name(&mut self, id: NodeId, name: &str) {
        let text = self.store_text(name);
        self.names.insert(id, text);
    }

    /// Returns a node outside any tree.
    fn new_node(&mut self, meta: Meta) -> NodeId {
        let node = Node {
            parent: NO_NODE,
            first_child: NO_NODE,
            next_sibling: NO_NODE,
            previous_sibling: NO_NODE,
            meta,
        };
        if let Some(id) = self.free.pop() {
            *self.node_mut(id) = node;
            return id;
        }
        let id = self.compact(self.nodes.len());
        self.nodes.push(node);
        id
    }

    /// Returns the child of `parent` named `name`.
    fn child(&self, parent: NodeId, name: &str) -> Option<NodeId> {
        let hash = name_hash(&self.hasher, parent, name);
        let names = self.name_source();
        self.by_name
            .find(hash, |&id| {
                self.node(id).parent == parent && names.name(id) == name
            })
            .copied()
    }

    /// Returns the children of `parent`, in no particular order.
    fn children(&self, parent: NodeId) -> Vec<NodeId> {
        let mut children = Vec::new();
        let mut child = self.node(parent).first_child;
        while child != NO_NODE {
            children.push(child);
            child = self.node(child).next_sibling;
        }
        children
    }

    /// Makes `id`, a node outside any tree, a child of `parent`. `parent` must have no child
    /// of the same name.
    fn attach(&mut self, parent: NodeId, id: NodeId) {
        let first = self.node(parent).first_child;
        if first != NO_NODE {
            self.node_mut(first).previous_sibling = id;
        }
        self.set_links(id, parent, first, NO_NODE);
        self.node_mut(parent).first_child = id;

        let Self {
            layers,
            starts,
            nodes,
            names,
            text,
            by_name,
            hasher,
            ..
        } = self;
        let source = NameSource {
            layers,
            starts,
            nodes,
            names,
            text,
        };
        let hash_of =
            |&id: &NodeId| name_hash(hasher, source.nodes[id as usize].parent, source.name(id));
        let hash = hash_of(&id);
        by_name.insert_unique(hash, id, hash_of);
    }

    /// Takes `id` out of its parent's children; its subtree stays with it.
    fn detach(&mut self, id: NodeId) {
        let node = self.node(id);
        let (parent, next, previous) = (node.parent, node.next_sibling, node.previous_sibling);
        if parent == NO_NODE {
            return;
        }
        let hash = name_hash(&self.hasher, parent, self.name(id));
        if let Ok(found) = self.by_name.find_entry(hash, |&other| other == id) {
            found.remove();
        }
        if previous == NO_NODE {
            self.node_mut(parent).first_child = next;
        } else {
            self.node_mut(previous).next_sibling = next;
        }
        if next != NO_NODE {
            self.node_mut(next).previous_sibling = previous;
        }
        self.set_links(id, NO_NODE, NO_NODE, NO_NODE);
    }

    fn set_links(&mut self, id: NodeId, parent: NodeId, next: NodeId, previous: NodeId) {
        let node = self.node_mut(id);
        node.parent = parent;
        node.next_sibling = next;
        node.previous_sibling = previous;
    }

    /// Detaches `id` and frees it with its subtree, without recursion: paths can be thousands
    /// of directories deep.
    fn discard(&mut self, id: NodeId) {
        self.detach(id);
        let mut pending = vec![id];
        while let Some(id) = pending.pop() {
            for child in self.children(id) {
                self.detach(child);
                pending.push(child);
            }
            self.bodies.remove(&id);
            self.names.remove(&id);
            self.free.push(id);
        }
    }

    /// Returns the node at a normalised absolute path below `from`.
    fn find(&self, from: NodeId, path: &str) -> Option<NodeId> {
        let mut node = from;
        for part in components(path) {
            node = self.child(node, part)?;
        }
        Some(node)
    }

    /// Returns the directory at `dir` below `from`, creating missing directories and
    /// replacing non-directories in the way, as a runtime's `MkdirAll` would need.
    // NOTE: runtimes fail to apply a layer whose entry sits below a regular file. Replacing
    // the file keeps the tree consistent for such layers, which cannot run anyway.
    fn make_dir(&mut self, from: NodeId, dir: &str, layer: u32) -> NodeId {
        let mut node = from;
        for part in components(dir) {
            node = match self.child(node, part) {
                Some(child) => {
                    if !self.is_dir(child) {
                        // The implicit directory has no entry to take its name from.
                        if !self.names.contains_key(&child) {
                            self.set_name(child, part);
                        }
                        self.node_mut(child).meta = self.implicit_dir(layer);
                        self.bodies.remove(&child);
                    }
                    child
                }
                None => {
                    let child = self.new_node(self.implicit_dir(layer));
                    self.set_name(child, part);
                    self.attach(node, child);
                    child
                }
            };
        }
        node
    }

    /// Moves every child of `from` to `to`, replacing children of `to` with the same name.
    fn move_children(&mut self, from: NodeId, to: NodeId) {
        for child in self.children(from) {
            self.detach(child);
            if let Some(old) = self.child(to, self.name(child)) {
                self.discard(old);
            }
            self.attach(to, child);
        }
    }

    /// Puts `id`, a node outside any tree, at `path` below `root`: a directory over a
    /// directory keeps the children of both, anything else replaces the old node with its
    /// subtree. The root only takes a directory's entry and children.
    fn put(&mut self, root: NodeId, path: &str, id: NodeId) {
        if path == "/" {
            if self.is_dir(id) {
                let meta = self.meta(id);
                self.node_mut(root).meta = meta;
                self.move_children(id, root);
            }
            self.discard(id);
            return;
        }
        let (dir, name) = split_parent(path);
        let parent = self.make_dir(root, dir, self.layer_of(id));
        match self.child(parent, name) {
            Some(existing) if self.is_dir(existing) && self.is_dir(id) => {
                // Both have the name `name`, so the existing node may show the new entry.
                let meta = self.meta(id);
                self.node_mut(existing).meta = meta;
                self.move_children(id, existing);
                self.discard(id);
            }
            existing => {
                if let Some(existing) = existing {
                    self.discard(existing);
                }
                if self.name(id) != name {
                    self.set_name(id, name);
                }
                self.attach(parent, id);
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
pub struct FinalFs<'a> {
    /// The final filesystem below [`ROOT`]. Every path is reached from the root one name at a
    /// time, so resolving a path costs time in proportion to its length.
    tree: Tree<'a>,
    /// Landing paths of entries written through a symlinked parent, by (layer, entry path).
    redirects: HashMap<(usize, String), String>,
}

impl std::fmt::Debug for FinalFs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FinalFs")
            .field("entries", &self.entries().count())
            .field("hard_links", &self.tree.hard_links.len())
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

impl<'a> FinalFs<'a> {
    /// Merges `layers` (lowest first).
    ///
    /// Nodes store layer and entry indices, node ids and text offsets in 32 bits. When the
    /// layers need more, the merge stops and [`FinalFs::overflowed`] returns true.
    pub fn build(layers: &'a [LayerIndex]) -> Self {
        let nodes = 1 + layers
            .iter()
            .map(|layer| layer.entries().len())
            .sum::<usize>();
        let mut fs = FinalFs {
            tree: Tree::with_capacity(layers, nodes),
            redirects: HashMap::new(),
        };
        for (layer, index) in layers.iter().enumerate() {
            let layer = fs.tree.compact(layer);
            fs.apply_layer(layer, index);
        }
        fs
    }

    /// Tells whether the layers had more files, or longer names, than the tree can index
    /// (about four billion of either). The merge then stopped early, so the view is
    /// incomplete and a scan must fail instead of checking it.
    pub fn overflowed(&self) -> bool {
        self.tree.overflowed
    }

    fn final_entry(&self, id: NodeId) -> FinalEntry {
        let (layer, position) = locate(&self.tree.starts, self.tree.meta(id));
        let (kind, mode) = self.tree.kind_and_mode(id);
        FinalEntry {
            layer: layer as usize,
            entry_index: position.map(|position| position as usize),
            kind,
            mode,
            link_target: self.tree.link_target(id).map(str::to_string),
            hard_link: self.tree.is_hard_link(id),
        }
    }

    /// Returns the entry at `path` without following symlinks. `path` is normalised lexically
    /// first (see [`normalize_path`]).
    pub fn entry(&self, path: &str) -> Option<FinalEntry> {
        self.tree
            .find(ROOT, &normalize_path(path))
            .map(|id| self.final_entry(id))
    }

    /// Returns every entry of the final filesystem with its path, the root first, then each
    /// directory before its children, children in byte order of their names.
    pub fn entries(&self) -> impl Iterator<Item = (String, FinalEntry)> {
        let mut out = Vec::new();
        let mut pending: Vec<(String, NodeId)> = vec![("/".to_string(), ROOT)];
        while let Some((path, id)) = pending.pop() {
            let mut children = self.tree.children(id);
            children.sort_by(|a, b| self.tree.name(*b).cmp(self.tree.name(*a)));
            for child in children {
                pending.push((join_child(&path, self.tree.name(child)), child));
            }
            out.push((path, self.final_entry(id)));
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
        let Some(id) = resolved.and_then(|p| self.tree.find(ROOT, &p)) else {
            return FileBody::NoFile;
        };
        if self.tree.kind(id) != EntryKind::File {
            return FileBody::NoFile;
        }
        match self.tree.bodies.get(&id) {
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
        self.tree.find(ROOT, landed).is_some_and(|id| {
            let (entry_layer, position) = locate(&self.tree.starts, self.tree.meta(id));
            entry_layer as usize == layer && position.is_some()
        })
    }

    /// Returns the kind and mode of the file that hard link entry `entry_index` of layer
    /// `layer` links to, or `None` when that entry is not a hard link.
    pub fn hard_link_kind_and_mode(
        &self,
        layer: usize,
        entry_index: usize,
    ) -> Option<(EntryKind, u32)> {
        let number = self.tree.entry_number(layer, entry_index)?;
        self.tree
            .hard_links
            .get(&number)
            .map(|link| (link.kind, link.mode))
    }

    fn apply_layer(&mut self, layer: u32, index: &LayerIndex) {
        let hidden = self.apply_whiteouts(index);
        let bodies = bodies_by_entry(index);
        for (position, entry) in index.entries().iter().enumerate() {
            if entry.whiteout().is_some() {
                continue;
            }
            if self.tree.full() {
                break;
            }
            let body = bodies.get(&position).map(|body| Arc::from(*body));
            self.apply_entry(layer, position, &entry, body, hidden);
        }
        self.tree.discard(hidden);
    }

    /// Applies the layer's whiteouts and opaque markers to the lower layers. Returns the root
    /// of a tree of the nodes they removed, where hard links of the same layer may still find
    /// their target.
    fn apply_whiteouts(&mut self, index: &LayerIndex) -> NodeId {
        let hidden = self.tree.new_node(self.tree.implicit_dir(0));
        for entry in index.entries().iter() {
            if self.tree.full() {
                break;
            }
            match entry.whiteout() {
                Some(Whiteout::Opaque { dir }) => {
                    let dir = self.resolve_for_create(dir);
                    if let Some(node) = self.tree.find(ROOT, &dir) {
                        for child in self.tree.children(node) {
                            let path = join_child(&dir, self.tree.name(child));
                            self.tree.detach(child);
                            self.tree.put(hidden, &path, child);
                        }
                    }
                }
                Some(Whiteout::Remove { dir, name }) => {
                    // Runtimes join the name lexically, so `.wh.` and `.wh..` name the
                    // directory itself and its parent.
                    let dir = self.resolve_for_create(dir);
                    let target = normalize_path(&format!("{dir}/{name}"));
                    if let Some(node) = self.remove(&target) {
                        self.tree.put(hidden, &target, node);
                    }
                }
                None => {}
            }
        }
        hidden
    }

    /// Takes the node at `path` out of the final filesystem with its subtree. For the root,
    /// only its children go, under a copy of the root.
    fn remove(&mut self, path: &str) -> Option<NodeId> {
        if path == "/" {
            let root = self.tree.meta(ROOT);
            let removed = self.tree.new_node(root);
            self.tree.move_children(ROOT, removed);
            return Some(removed);
        }
        let id = self.tree.find(ROOT, path)?;
        self.tree.detach(id);
        Some(id)
    }

    fn apply_entry(
        &mut self,
        layer: u32,
        position: usize,
        entry: &LayerEntry<'_>,
        body: Option<Arc<[u8]>>,
        hidden: NodeId,
    ) {
        let entry_path = entry.path();
        let path = self.landing_path(&entry_path);
        if path != entry_path {
            self.redirects
                .insert((layer as usize, entry_path), path.clone());
        }
        let meta = self.tree.entry_meta(layer, position);
        let mut body = body;
        if entry.kind == EntryKind::HardLink {
            let mut link = HardLink {
                kind: entry.kind,
                mode: entry.mode,
                target: entry.link_target.map(|target| self.tree.store_text(target)),
            };
            if let Some(source_body) = self.fill_hard_link(&mut link, entry, hidden) {
                body = source_body;
            }
            self.tree.hard_links.insert(meta.0, link);
        }
        let id = self.tree.new_node(meta);
        if let Some(body) = body {
            self.tree.bodies.insert(id, body);
        }
        // containerd skips non-directories that resolve to the root.
        self.tree.put(ROOT, &path, id);
    }

    /// Fills in a hard link from the file it links to and returns that file's body, or
    /// `None` when there is no such file. The file is looked up among the same layer's earlier
    /// entries and the lower layers (both in the final tree), then among lower entries that
    /// this layer's whiteouts removed. A link to a missing file or to a directory keeps its own
    /// header, because runtimes fail to create it.
    fn fill_hard_link(
        &mut self,
        link: &mut HardLink,
        entry: &LayerEntry<'_>,
        hidden: NodeId,
    ) -> Option<Option<Arc<[u8]>>> {
        let target = self.landing_path(entry.link_target?);
        let found = self
            .tree
            .find(ROOT, &target)
            .or_else(|| self.tree.find(hidden, &target));
        let source = found.filter(|id| !self.tree.is_dir(*id))?;
        (link.kind, link.mode) = self.tree.kind_and_mode(source);
        let source_target = match link.kind {
            EntryKind::Symlink => self.tree.link_target(source).map(str::to_string),
            _ => Some(target),
        };
        link.target = source_target.map(|target| self.tree.store_text(&target));
        Some(self.tree.bodies.get(&source).cloned())
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
        let mut resolved: Vec<(&str, Option<NodeId>)> = Vec::new();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            if component == ".." {
                resolved.pop();
                continue;
            }
            let parent = resolved.last().map_or(Some(ROOT), |(_, node)| *node);
            let child = parent.and_then(|node| self.tree.child(node, component));
            let kind = child.map(|id| (id, self.tree.kind(id)));
            match kind {
                Some((id, EntryKind::Symlink)) => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return None;
                    }
                    let target = self.tree.link_target(id).unwrap_or_default();
                    if target.starts_with('/') {
                        resolved.clear();
                    }
                    pending.extend(components(target).rev());
                }
                Some((_, kind)) if kind != EntryKind::Directory && !pending.is_empty() => {
                    if lookup == Lookup::Existing {
                        return None;
                    }
                    resolved.push((component, child));
                }
                Some(_) => resolved.push((component, child)),
                None if lookup == Lookup::Existing => return None,
                None => resolved.push((component, None)),
            }
        }
        let parts: Vec<&str> = resolved.iter().map(|(name, _)| *name).collect();
        Some(crate::layer::join_absolute(&parts))
    }
}

/// Finds the entry that owns each captured body: the last entry of the layer at its path.
fn bodies_by_entry(index: &LayerIndex) -> HashMap<usize, &[u8]> {
    if index.captured.is_empty() {
        return HashMap::new();
    }
    let names: HashSet<&str> = index
        .captured
        .keys()
        .map(|path| split_parent(path).1)
        .collect();
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (position, entry) in index.entries().iter().enumerate() {
        if !names.contains(entry.name) {
            continue;
        }
        if let Some((path, _)) = index.captured.get_key_value(entry.path().as_str()) {
            last.insert(path.as_str(), position);
        }
    }
    last.into_iter()
        .filter_map(|(path, position)| {
            let body = index.captured.get(path)?;
            Some((position, body.as_slice()))
        })
        .collect()
}

/// Returns the kind and mode a layer entry has once extracted: for a hard link, those of the
/// file it links to (looked up in the same layer first, then in the lower layers).
///
/// Each call with a hard link merges `layers` again. Where a [`FinalFs`] is already built,
/// [`FinalFs::hard_link_kind_and_mode`] returns the same without merging. Out-of-range indices give
/// `(EntryKind::File, 0)`.
pub fn effective_kind_and_mode(
    layers: &[LayerIndex],
    layer: usize,
    entry_index: usize,
) -> (EntryKind, u32) {
    let Some(entry) = layers.get(layer).and_then(|l| l.entries().get(entry_index)) else {
        return (EntryKind::File, 0);
    };
    if entry.kind != EntryKind::HardLink {
        return (entry.kind, entry.mode);
    }
    FinalFs::build(layers)
        .hard_link_kind_and_mode(layer, entry_index)
        .unwrap_or((entry.kind, entry.mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(
        path: &'a str,
        kind: EntryKind,
        mode: u32,
        link_target: Option<&'a str>,
    ) -> LayerEntry<'a> {
        LayerEntry::new(path, kind, mode, link_target, 0)
    }

    fn file(path: &str, mode: u32) -> LayerEntry<'_> {
        entry(path, EntryKind::File, mode, None)
    }

    fn dir(path: &str) -> LayerEntry<'_> {
        entry(path, EntryKind::Directory, 0o755, None)
    }

    fn symlink<'a>(path: &'a str, target: &'a str) -> LayerEntry<'a> {
        entry(path, EntryKind::Symlink, 0o777, Some(target))
    }

    fn hard_link<'a>(path: &'a str, target: &'a str, mode: u32) -> LayerEntry<'a> {
        entry(path, EntryKind::HardLink, mode, Some(target))
    }

    fn layer(entries: Vec<LayerEntry<'_>>) -> LayerIndex {
        LayerIndex::from_entries(entries)
    }

    fn layer_with_bodies(entries: Vec<LayerEntry<'_>>, bodies: &[(&str, &[u8])]) -> LayerIndex {
        let mut index = LayerIndex::from_entries(entries);
        index.captured = bodies
            .iter()
            .map(|(path, body)| (path.to_string(), body.to_vec()))
            .collect();
        index
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
        assert_eq!(parent.as_ref().map(|e| e.kind), Some(EntryKind::Directory));
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
            link.as_ref().map(|e| (e.kind, e.mode)),
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
    fn entries_are_found_past_empty_layers() {
        let layers = [
            layer(vec![]),
            layer(vec![file("/a", 0o644)]),
            layer(vec![]),
            layer(vec![file("/dir/b", 0o600)]),
        ];
        let fs = FinalFs::build(&layers);
        let a = fs.entry("/a").map(|e| (e.layer, e.entry_index));
        assert_eq!(a, Some((1, Some(0))));
        assert!(fs.is_present(1, "/a"));
        let implicit = fs.entry("/dir").map(|e| (e.layer, e.entry_index, e.kind));
        assert_eq!(implicit, Some((3, None, EntryKind::Directory)));
        let b = fs.entry("/dir/b").map(|e| (e.layer, e.entry_index, e.mode));
        assert_eq!(b, Some((3, Some(0), 0o600)));
    }

    #[test]
    fn entry_reports_link_targets() {
        let layers = [
            layer(vec![file("/real", 0o644), symlink("/link", "real")]),
            layer(vec![
                hard_link("/to-file", "/real", 0o600),
                hard_link("/to-link", "/link", 0o600),
                hard_link("/to-nothing", "/missing", 0o600),
            ]),
        ];
        let fs = FinalFs::build(&layers);
        let target = |path| fs.entry(path).and_then(|e| e.link_target);
        assert_eq!(target("/link").as_deref(), Some("real"));
        assert_eq!(target("/to-file").as_deref(), Some("/real"));
        assert_eq!(target("/to-link").as_deref(), Some("real"));
        assert_eq!(target("/to-nothing").as_deref(), Some("/missing"));
        assert_eq!(target("/real"), None);
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
            let mut index = layer(vec![file("/target", 0)]);
            for i in 0..links {
                let next = if i + 1 == links {
                    "/target".to_string()
                } else {
                    format!("/l{}", i + 1)
                };
                index.push(symlink(&format!("/l{i}"), &next));
            }
            [index]
        };
        let layers = chain(MAX_SYMLINK_HOPS);
        assert_eq!(
            FinalFs::build(&layers).resolve("/l0").as_deref(),
            Some("/target")
        );
        let layers = chain(MAX_SYMLINK_HOPS + 1);
        assert_eq!(FinalFs::build(&layers).resolve("/l0"), None);
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

//! The test server's node tree, keyed by absolute path. Every node carries
//! the generation of its last change (value, or set of children) so a
//! transaction can tell at commit whether anything it relied on moved.

use std::collections::{BTreeSet, HashMap};

/// Error names of ERROR replies (CONTRACT 3.3).
pub(crate) type Errno = &'static str;

#[derive(Clone, Debug)]
struct Node {
    value: Vec<u8>,
    children: BTreeSet<String>,
    generation: u64,
}

impl Node {
    fn new(generation: u64) -> Node {
        Node {
            value: Vec::new(),
            children: BTreeSet::new(),
            generation,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Tree {
    nodes: HashMap<String, Node>,
}

/// `/a/b` -> `(/a, b)`; `/a` -> `(/, a)`; the root has no parent.
pub(crate) fn split_parent(path: &str) -> Option<(&str, &str)> {
    let i = path.rfind('/')?;
    let name = &path[i + 1..];
    if name.is_empty() {
        return None;
    }
    Some((if i == 0 { "/" } else { &path[..i] }, name))
}

/// Whether `path` is `base` or lies below it.
pub(crate) fn at_or_below(path: &str, base: &str) -> bool {
    if base == "/" {
        return path.starts_with('/');
    }
    path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

impl Tree {
    /// The root plus `/local/domain/0`, the home of relative paths.
    pub(crate) fn new() -> Tree {
        let mut t = Tree {
            nodes: HashMap::from([("/".to_string(), Node::new(0))]),
        };
        t.mkdir("/local/domain/0", 0);
        t
    }

    pub(crate) fn value(&self, path: &str) -> Option<&[u8]> {
        self.nodes.get(path).map(|n| n.value.as_slice())
    }

    pub(crate) fn generation(&self, path: &str) -> Option<u64> {
        self.nodes.get(path).map(|n| n.generation)
    }

    pub(crate) fn children(&self, path: &str) -> Option<impl Iterator<Item = &str>> {
        self.nodes
            .get(path)
            .map(|n| n.children.iter().map(String::as_str))
    }

    /// `path` and the nodes a write or mkdir of it would create, up to and
    /// including the first existing ancestor, whose children change.
    pub(crate) fn create_footprint(&self, path: &str) -> Vec<String> {
        let mut out = vec![path.to_string()];
        let mut cur = path;
        while !self.nodes.contains_key(cur) {
            match split_parent(cur) {
                Some((parent, _)) => {
                    out.push(parent.to_string());
                    cur = parent;
                }
                None => break,
            }
        }
        out
    }

    /// `path`, its parent and its whole subtree: what an rm depends on.
    pub(crate) fn rm_footprint(&self, path: &str) -> Vec<String> {
        let mut out = self.subtree(path);
        if out.is_empty() {
            out.push(path.to_string());
        }
        if let Some((parent, _)) = split_parent(path) {
            out.push(parent.to_string());
        }
        out
    }

    fn subtree(&self, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![path.to_string()];
        while let Some(p) = todo.pop() {
            if let Some(n) = self.nodes.get(&p) {
                for c in &n.children {
                    todo.push(child_path(&p, c));
                }
                out.push(p);
            }
        }
        out
    }

    /// Sets the value of `path`, creating missing parents with empty values.
    pub(crate) fn write(&mut self, path: &str, value: &[u8], generation: u64) {
        self.ensure(path, generation);
        let node = self.nodes.get_mut(path).expect("ensured");
        node.value = value.to_vec();
        node.generation = generation;
    }

    /// Creates `path` and missing parents; true if anything was created.
    pub(crate) fn mkdir(&mut self, path: &str, generation: u64) -> bool {
        let existed = self.nodes.contains_key(path);
        self.ensure(path, generation);
        !existed
    }

    fn ensure(&mut self, path: &str, generation: u64) {
        if self.nodes.contains_key(path) {
            return;
        }
        let (parent, name) = split_parent(path).expect("the root always exists");
        self.ensure(parent, generation);
        let p = self.nodes.get_mut(parent).expect("ensured");
        p.children.insert(name.to_string());
        p.generation = generation;
        self.nodes.insert(path.to_string(), Node::new(generation));
    }

    /// Removes `path` and its subtree. A missing node is fine (false) but
    /// only if its parent exists; the root cannot go.
    pub(crate) fn rm(&mut self, path: &str, generation: u64) -> Result<bool, Errno> {
        let Some((parent, name)) = split_parent(path) else {
            return Err("EINVAL");
        };
        if !self.nodes.contains_key(path) {
            return match self.nodes.contains_key(parent) {
                true => Ok(false),
                false => Err("ENOENT"),
            };
        }
        for p in self.subtree(path) {
            self.nodes.remove(&p);
        }
        let p = self.nodes.get_mut(parent).expect("checked");
        p.children.remove(name);
        p.generation = generation;
        Ok(true)
    }
}

pub(crate) fn child_path(parent: &str, name: &str) -> String {
    match parent {
        "/" => format!("/{name}"),
        p => format!("{p}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(t: &Tree, p: &str) -> Vec<String> {
        t.children(p).unwrap().map(String::from).collect()
    }

    #[test]
    fn starts_with_domain_0() {
        let t = Tree::new();
        assert_eq!(names(&t, "/"), ["local"]);
        assert_eq!(names(&t, "/local/domain"), ["0"]);
        assert_eq!(t.value("/local/domain/0"), Some(&b""[..]));
        assert!(t.children("/local/domain/0").unwrap().next().is_none());
    }

    #[test]
    fn write_creates_parents_and_bumps_generations() {
        let mut t = Tree::new();
        t.write("/a/b/c", b"v", 5);
        assert_eq!(t.value("/a/b/c"), Some(&b"v"[..]));
        assert_eq!(t.value("/a/b"), Some(&b""[..]));
        assert_eq!(t.generation("/a"), Some(5));
        assert_eq!(t.generation("/"), Some(5));
        t.write("/a/b/c", b"w", 6);
        // Only the node itself changed: its parent's children did not.
        assert_eq!(t.generation("/a/b/c"), Some(6));
        assert_eq!(t.generation("/a/b"), Some(5));
    }

    #[test]
    fn mkdir_keeps_existing_values() {
        let mut t = Tree::new();
        t.write("/a", b"keep", 1);
        assert!(!t.mkdir("/a", 2));
        assert_eq!(t.value("/a"), Some(&b"keep"[..]));
        assert_eq!(t.generation("/a"), Some(1));
        assert!(t.mkdir("/a/x", 3));
    }

    #[test]
    fn rm_removes_subtree_and_reports_missing_parent() {
        let mut t = Tree::new();
        t.write("/a/b/c", b"v", 1);
        assert_eq!(t.rm("/a/b", 2), Ok(true));
        assert_eq!(t.value("/a/b/c"), None);
        assert_eq!(t.value("/a/b"), None);
        assert_eq!(names(&t, "/a"), Vec::<String>::new());
        assert_eq!(t.generation("/a"), Some(2));
        assert_eq!(t.rm("/a/b", 3), Ok(false));
        assert_eq!(t.rm("/a/b/c", 3), Err("ENOENT"));
        assert_eq!(t.rm("/", 3), Err("EINVAL"));
    }

    #[test]
    fn footprints() {
        let mut t = Tree::new();
        t.write("/a/b", b"", 1);
        assert_eq!(t.create_footprint("/a/b"), ["/a/b"]);
        assert_eq!(
            t.create_footprint("/a/b/c/d"),
            ["/a/b/c/d", "/a/b/c", "/a/b"]
        );
        let mut rm = t.rm_footprint("/a");
        rm.sort();
        assert_eq!(rm, ["/", "/a", "/a/b"]);
        assert_eq!(t.rm_footprint("/zz"), ["/zz", "/"]);
    }

    #[test]
    fn path_relations() {
        assert_eq!(split_parent("/a/b"), Some(("/a", "b")));
        assert_eq!(split_parent("/a"), Some(("/", "a")));
        assert_eq!(split_parent("/"), None);
        assert!(at_or_below("/a/b", "/a"));
        assert!(at_or_below("/a", "/a"));
        assert!(!at_or_below("/ab", "/a"));
        assert!(at_or_below("/x", "/"));
        assert!(!at_or_below("@releaseDomain", "/"));
        assert!(!at_or_below("/a", "/a/b"));
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(child_path("/a", "b"), "/a/b");
    }
}

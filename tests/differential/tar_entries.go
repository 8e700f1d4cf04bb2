// Command tar_entries lists the entries of layer tars as Go's archive/tar reads them and as a
// container runtime would apply them. It is the reference side of tests/tar_differential.rs.
//
// Usage: tar_entries FILE...
//
// For each FILE it prints "layer FILE", one "entry" line per tar entry, and then "ok", or
// "error MESSAGE" where the runtime would reject the layer. An entry line has five fields
// separated by spaces:
//
//	entry TYPEFLAG MODE SIZE PATH LINK
//
// TYPEFLAG is the type byte in decimal after archive/tar's conversions, MODE the permission and
// special bits in octal, SIZE the logical size in bytes, and PATH and LINK are hex-encoded
// bytes ("-" when empty). PATH is the entry name joined to "/" and cleaned, as containerd's
// archive.Apply normalises it. LINK is the hard link target normalised the same way, or the
// symlink target as written; other types have no LINK.
//
// Like containerd's apply, the program reads every entry body (which is where archive/tar
// reports inconsistent sparse files), skips global PAX headers, and reads the decompressed
// stream to its end after the tar ends, as containerd does to check the diff_id. It rejects
// names and link targets with a NUL byte, which the kernel rejects when the runtime creates
// the file.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// gzipMagic is the gzip header prefix that containerd's compression.DetectCompression matches.
var gzipMagic = []byte{0x1f, 0x8b, 0x08}

func main() {
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for _, name := range os.Args[1:] {
		fmt.Fprintf(out, "layer %s\n", name)
		if err := listLayer(out, name); err != nil {
			fmt.Fprintf(out, "error %s\n", oneLine(err.Error()))
		} else {
			fmt.Fprintln(out, "ok")
		}
	}
}

// listLayer prints the entries of one layer file and returns the error that would make the
// runtime reject it.
func listLayer(out io.Writer, name string) error {
	file, err := os.Open(name)
	if err != nil {
		return err
	}
	defer file.Close()

	buffered := bufio.NewReader(file)
	var stream io.Reader = buffered
	// Peek fails for blobs shorter than the magic, which are then read as plain tars.
	if prefix, _ := buffered.Peek(len(gzipMagic)); bytes.Equal(prefix, gzipMagic) {
		decompressed, err := gzip.NewReader(buffered)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		stream = decompressed
	}

	reader := tar.NewReader(stream)
	for {
		header, err := reader.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		if _, err := io.Copy(io.Discard, reader); err != nil {
			return fmt.Errorf("tar body of %q: %w", header.Name, err)
		}
		if header.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		// archive/tar accepts a NUL in a GNU.sparse.name record, but the kernel rejects
		// such a path when the runtime creates the file.
		if strings.ContainsRune(header.Name, 0) || strings.ContainsRune(header.Linkname, 0) {
			return fmt.Errorf("NUL byte in the path or link target of %q", header.Name)
		}
		fmt.Fprintf(out, "entry %d %o %d %s %s\n", header.Typeflag, header.Mode&07777,
			header.Size, encode(rootJoin(header.Name)), encode(linkTarget(header)))
	}
	if _, err := io.Copy(io.Discard, stream); err != nil {
		return fmt.Errorf("reading after the tar end: %w", err)
	}
	return nil
}

// rootJoin normalises a name as containerd does before it applies an entry: joined to the
// root and cleaned, so ".." parts stop at the root.
func rootJoin(name string) string {
	return filepath.Join("/", name)
}

func linkTarget(header *tar.Header) string {
	switch header.Typeflag {
	case tar.TypeLink:
		return rootJoin(header.Linkname)
	case tar.TypeSymlink:
		return header.Linkname
	default:
		return ""
	}
}

func encode(text string) string {
	if text == "" {
		return "-"
	}
	return hex.EncodeToString([]byte(text))
}

func oneLine(text string) string {
	return strings.ReplaceAll(text, "\n", " ")
}

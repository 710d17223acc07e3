package controlplane

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
)

// The export file is a sequence of frames, each a kind byte, a big-endian uint32 length and
// that many bytes, after a magic line:
//
//	"ERPCTL-EXPORT\n"
//	H  header (JSON: format version, tenant name, modules and their desired-state hashes)
//	T  a table (JSON: name, module, columns)   then D* (COPY text rows)   then E (JSON: rows, sha256 of its D bytes)
//	... one T D* E group per table, parents before the tables that reference them
//	Z  the sha256 of every byte before this frame, then end of file
//
// Nothing in it names the slug, the schema or the cluster. A reader checks every E and the Z
// before it trusts the file: a truncated or altered file is refused.
const (
	exportMagic      = "ERPCTL-EXPORT\n"
	exportVersion    = 1
	frameHeader      = 'H'
	frameTable       = 'T'
	frameData        = 'D'
	frameEnd         = 'E'
	frameTrailer     = 'Z'
	maxFrame         = 4 << 20 // a reader refuses bigger frames: a corrupt length must not allocate gigabytes
	dataFrameFlushAt = 256 << 10
)

// ErrCorrupt is an export file that is truncated, altered or not an export file at all.
// It is bad input (ErrInvalid) to callers.
var ErrCorrupt = fmt.Errorf("%w: the export file is damaged", ErrInvalid)

type exportHeader struct {
	Format     string            `json:"format"`
	Version    int               `json:"version"`
	Name       string            `json:"name"`
	FollowAll  bool              `json:"follow_all"`
	Modules    []string          `json:"modules"`      // enabled, dependencies included, in dependency order
	Hashes     map[string]string `json:"hashes"`       // module → desired-state hash of that module alone
	Desired    string            `json:"desired_hash"` // of the whole enabled set
	ExportedAt string            `json:"exported_at"`
	Labels     map[string]string `json:"labels,omitempty"` // the tenant's labels; files of earlier erpctls have none
}

type fileTable struct {
	Name    string         `json:"name"`
	Module  string         `json:"module"`
	Columns []exportColumn `json:"columns"`
}

type exportColumn struct {
	Name string `json:"name"`
	Type string `json:"type"` // format_type, for people and for the compatibility report
}

type exportTableEnd struct {
	Rows   int64  `json:"rows"`
	SHA256 string `json:"sha256"`
}

// frameWriter writes frames and hashes every byte it writes.
type frameWriter struct {
	w   *bufio.Writer
	sum hash.Hash
}

func newFrameWriter(w io.Writer) (*frameWriter, error) {
	fw := &frameWriter{w: bufio.NewWriterSize(w, 1<<20), sum: sha256.New()}
	return fw, fw.raw([]byte(exportMagic))
}

func (fw *frameWriter) raw(b []byte) error {
	fw.sum.Write(b)
	_, err := fw.w.Write(b)
	return err
}

func (fw *frameWriter) frame(kind byte, payload []byte) error {
	var hdr [5]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if err := fw.raw(hdr[:]); err != nil {
		return err
	}
	return fw.raw(payload)
}

func (fw *frameWriter) json(kind byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return fw.frame(kind, b)
}

// finish writes the trailer and flushes.
func (fw *frameWriter) finish() error {
	sum := hex.EncodeToString(fw.sum.Sum(nil))
	if err := fw.frame(frameTrailer, []byte(sum)); err != nil {
		return err
	}
	return fw.w.Flush()
}

// dataWriter is the io.Writer COPY TO writes a table's rows into: it gathers them into D frames
// of about dataFrameFlushAt bytes and hashes them for the table's E frame.
type dataWriter struct {
	fw  *frameWriter
	buf []byte
	sum hash.Hash
}

// Write cuts the COPY stream into frames of dataFrameFlushAt bytes: a row may span two frames
// (the reader joins them), so no frame outgrows maxFrame however large one row is.
func (d *dataWriter) Write(p []byte) (int, error) {
	d.sum.Write(p)
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), dataFrameFlushAt-len(d.buf))
		d.buf, p = append(d.buf, p[:k]...), p[k:]
		if len(d.buf) >= dataFrameFlushAt {
			if err := d.flush(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (d *dataWriter) flush() error {
	if len(d.buf) == 0 {
		return nil
	}
	err := d.fw.frame(frameData, d.buf)
	d.buf = d.buf[:0]
	return err
}

// frameReader reads frames, checking the magic, sizes and the trailer's hash.
type frameReader struct {
	r    *bufio.Reader
	sum  hash.Hash
	buf  []byte
	done bool // the trailer was read and matched
}

func newFrameReader(r io.Reader) (*frameReader, error) {
	fr := &frameReader{r: bufio.NewReaderSize(r, 1<<20), sum: sha256.New()}
	magic := make([]byte, len(exportMagic))
	if _, err := io.ReadFull(fr.r, magic); err != nil || string(magic) != exportMagic {
		return nil, fmt.Errorf("%w: it does not start as an erpctl export file does", ErrCorrupt)
	}
	fr.sum.Write(magic)
	return fr, nil
}

// next returns the next frame; its payload is valid until the following call. At the trailer it
// checks the file's hash and that nothing follows.
func (fr *frameReader) next() (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(fr.r, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("%w: it ends early (truncated?)", ErrCorrupt)
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("%w: a frame claims %d bytes", ErrCorrupt, n)
	}
	if cap(fr.buf) < int(n) {
		fr.buf = make([]byte, n)
	}
	fr.buf = fr.buf[:n]
	if _, err := io.ReadFull(fr.r, fr.buf); err != nil {
		return 0, nil, fmt.Errorf("%w: it ends early (truncated?)", ErrCorrupt)
	}
	if hdr[0] == frameTrailer {
		want := hex.EncodeToString(fr.sum.Sum(nil))
		if !bytes.Equal(fr.buf, []byte(want)) {
			return 0, nil, fmt.Errorf("%w: its checksum does not match its content (altered?)", ErrCorrupt)
		}
		if _, err := fr.r.ReadByte(); err != io.EOF {
			return 0, nil, fmt.Errorf("%w: bytes follow its end", ErrCorrupt)
		}
		fr.done = true
		return hdr[0], fr.buf, nil
	}
	fr.sum.Write(hdr[:])
	fr.sum.Write(fr.buf)
	return hdr[0], fr.buf, nil
}

// nextJSON reads a frame of the given kind and decodes it into v.
func (fr *frameReader) nextJSON(kind byte, v any) error {
	k, b, err := fr.next()
	if err != nil {
		return err
	}
	if k != kind {
		return fmt.Errorf("%w: frame %q where %q was expected", ErrCorrupt, k, kind)
	}
	return jsonFrame(b, v)
}

func jsonFrame(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: a frame does not decode: %v", ErrCorrupt, err)
	}
	return nil
}

// tableRows is the io.Reader COPY FROM reads one table's rows from: the payloads of D frames up
// to the table's E frame, which it keeps for the caller to check.
type tableRows struct {
	fr  *frameReader
	sum hash.Hash
	cur []byte
	end *exportTableEnd
	err error // the first error reading the file, which COPY turns into a failure of its own
}

func (t *tableRows) Read(p []byte) (int, error) {
	n, err := t.read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}

func (t *tableRows) read(p []byte) (int, error) {
	for len(t.cur) == 0 {
		if t.end != nil {
			return 0, io.EOF
		}
		k, b, err := t.fr.next()
		if err != nil {
			return 0, err
		}
		switch k {
		case frameData:
			t.sum.Write(b)
			t.cur = b
		case frameEnd:
			t.end = &exportTableEnd{}
			if err := json.Unmarshal(b, t.end); err != nil {
				return 0, fmt.Errorf("%w: a table's end: %v", ErrCorrupt, err)
			}
		default:
			return 0, fmt.Errorf("%w: frame %q inside a table's rows", ErrCorrupt, k)
		}
	}
	n := copy(p, t.cur)
	t.cur = t.cur[n:]
	return n, nil
}

// check compares what was read and loaded with the table's E frame.
func (t *tableRows) check(table string, loaded int64) error {
	if t.end == nil {
		return fmt.Errorf("%w: table %s has no end", ErrCorrupt, table)
	}
	if got := hex.EncodeToString(t.sum.Sum(nil)); got != t.end.SHA256 {
		return fmt.Errorf("%w: the rows of table %s do not match their checksum (altered?)", ErrCorrupt, table)
	}
	if loaded != t.end.Rows {
		return fmt.Errorf("%w: table %s: %d rows loaded, the file says %d", ErrCorrupt, table, loaded, t.end.Rows)
	}
	return nil
}

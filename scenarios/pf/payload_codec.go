package pf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// claimCheckEncoding marks a payload that is a reference to an object in a
// claimCheckCodec's store rather than the data itself.
const claimCheckEncoding = "durabench/claim-check-sha256"

// claimCheckCodec is a converter.PayloadCodec that moves every payload larger
// than a threshold into a content-addressed directory and leaves a reference
// of a few dozen bytes in its place: the claim-check pattern. History then
// holds the reference, not the object, so objects far above the server's
// payload limit can travel through a workflow. Client and worker share the
// store by path; identical objects are stored once.
type claimCheckCodec struct {
	dir       string // objects live at dir/<first two hex digits>/<sha256 hex>
	threshold int    // payloads whose marshalled size exceeds it are offloaded
}

var _ converter.PayloadCodec = (*claimCheckCodec)(nil)

// claimCheckRef is the data of a reference payload.
type claimCheckRef struct {
	SHA256 string `json:"sha256"` // of the marshalled original payload
	Size   int    `json:"size"`   // bytes of the marshalled original payload
}

func newClaimCheckCodec(dir string, threshold int) (*claimCheckCodec, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("claim check store: %w", err)
	}
	return &claimCheckCodec{dir: dir, threshold: threshold}, nil
}

func (c *claimCheckCodec) path(sum string) string {
	return filepath.Join(c.dir, sum[:2], sum)
}

// Encode offloads large payloads and returns references for them.
func (c *claimCheckCodec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if proto.Size(p) <= c.threshold {
			out[i] = p
			continue
		}
		b, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("claim check: marshal payload: %w", err)
		}
		sum := sha256.Sum256(b)
		ref := claimCheckRef{SHA256: hex.EncodeToString(sum[:]), Size: len(b)}
		if err := c.put(ref.SHA256, b); err != nil {
			return nil, err
		}
		data, err := json.Marshal(ref)
		if err != nil {
			return nil, err
		}
		out[i] = &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(claimCheckEncoding)}, Data: data}
	}
	return out, nil
}

// put writes an object unless it is already stored; a temporary file renamed
// into place means a reader never sees half an object.
func (c *claimCheckCodec) put(sum string, b []byte) error {
	path := c.path(sum)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("claim check: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), sum+".tmp-*")
	if err != nil {
		return fmt.Errorf("claim check: %w", err)
	}
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("claim check: writing object sha256:%s: %w", sum, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("claim check: storing object sha256:%s: %w", sum, err)
	}
	return nil
}

// Decode resolves references back to the stored payloads; other payloads
// pass through.
func (c *claimCheckCodec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != claimCheckEncoding {
			out[i] = p
			continue
		}
		var err error
		if out[i], err = c.get(p.GetData()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *claimCheckCodec) get(refData []byte) (*commonpb.Payload, error) {
	var ref claimCheckRef
	if err := json.Unmarshal(refData, &ref); err != nil {
		return nil, fmt.Errorf("claim check: malformed reference %.80q: %w", refData, err)
	}
	want, err := hex.DecodeString(ref.SHA256)
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("claim check: malformed reference %.80q: sha256 is not 64 hex digits", refData)
	}
	b, err := os.ReadFile(c.path(ref.SHA256))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("claim check: object sha256:%s (%d bytes) is missing from the store %s: %w", ref.SHA256, ref.Size, c.dir, err)
	}
	if err != nil {
		return nil, fmt.Errorf("claim check: reading object sha256:%s: %w", ref.SHA256, err)
	}
	sum := sha256.Sum256(b)
	if len(b) != ref.Size || !bytes.Equal(sum[:], want) {
		return nil, fmt.Errorf("claim check: object sha256:%s is corrupt: %d bytes with sha256 %x, want %d bytes", ref.SHA256, len(b), sum, ref.Size)
	}
	var p commonpb.Payload
	if err := proto.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("claim check: object sha256:%s: %w", ref.SHA256, err)
	}
	return &p, nil
}

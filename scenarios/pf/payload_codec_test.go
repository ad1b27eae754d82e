package pf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// payloadOf encodes v with the default data converter.
func payloadOf(t *testing.T, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	require.NoError(t, err)
	return p
}

func TestClaimCheckCodecRoundTrip(t *testing.T) {
	const threshold = 1 << 10
	tests := []struct {
		name      string
		payload   *commonpb.Payload
		offloaded bool
	}{
		{"empty", payloadOf(t, []byte{}), false},
		{"below threshold", payloadOf(t, payloadBytes(threshold/2, 1)), false},
		{"just above threshold", payloadOf(t, payloadBytes(threshold, 1)), true},
		{"large", payloadOf(t, payloadBytes(1<<20, 2)), true},
		{"json", payloadOf(t, map[string]string{"text": strings.Repeat("x", 4*threshold)}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			codec, err := newClaimCheckCodec(dir, threshold)
			require.NoError(t, err)
			enc, err := codec.Encode([]*commonpb.Payload{tt.payload})
			require.NoError(t, err)
			require.Len(t, enc, 1)
			isRef := string(enc[0].GetMetadata()[converter.MetadataEncoding]) == claimCheckEncoding
			assert.Equal(t, tt.offloaded, isRef)
			if tt.offloaded {
				assert.Less(t, proto.Size(enc[0]), 200, "a reference stays small")
			} else {
				assert.Same(t, tt.payload, enc[0], "a small payload passes through")
			}
			dec, err := codec.Decode(enc)
			require.NoError(t, err)
			assert.True(t, proto.Equal(tt.payload, dec[0]), "decoded payload differs")
		})
	}
}

func TestClaimCheckCodecStoresIdenticalObjectsOnce(t *testing.T) {
	dir := t.TempDir()
	codec, err := newClaimCheckCodec(dir, 16)
	require.NoError(t, err)
	p := payloadOf(t, payloadBytes(4096, 3))
	_, err = codec.Encode([]*commonpb.Payload{p, p})
	require.NoError(t, err)
	_, err = codec.Encode([]*commonpb.Payload{p})
	require.NoError(t, err)
	n, _ := payloadStoreUsage(t, dir)
	assert.Equal(t, 1, n)
}

func TestClaimCheckCodecDecodeErrors(t *testing.T) {
	const threshold = 16
	tests := []struct {
		name    string
		spoil   func(t *testing.T, dir string, ref *commonpb.Payload) // breaks the store or the reference
		wantErr string
		notExit bool // the error wraps os.ErrNotExist
	}{
		{"missing object", func(t *testing.T, dir string, _ *commonpb.Payload) {
			require.NoError(t, os.RemoveAll(dir))
		}, "is missing from the store", true},
		{"corrupt object", func(t *testing.T, dir string, _ *commonpb.Payload) {
			objects, err := filepath.Glob(filepath.Join(dir, "*", "*"))
			require.NoError(t, err)
			require.Len(t, objects, 1)
			b, err := os.ReadFile(objects[0])
			require.NoError(t, err)
			b[len(b)/2] ^= 0xff
			require.NoError(t, os.WriteFile(objects[0], b, 0o644))
		}, "is corrupt", false},
		{"truncated object", func(t *testing.T, dir string, _ *commonpb.Payload) {
			objects, err := filepath.Glob(filepath.Join(dir, "*", "*"))
			require.NoError(t, err)
			require.NoError(t, os.Truncate(objects[0], 10))
		}, "is corrupt", false},
		{"reference not json", func(_ *testing.T, _ string, ref *commonpb.Payload) {
			ref.Data = []byte("not json")
		}, "malformed reference", false},
		{"reference digest not hex", func(_ *testing.T, _ string, ref *commonpb.Payload) {
			ref.Data = []byte(`{"sha256":"../../etc/passwd","size":3}`)
		}, "sha256 is not 64 hex digits", false},
		{"reference digest too short", func(_ *testing.T, _ string, ref *commonpb.Payload) {
			ref.Data = []byte(`{"sha256":"abcd","size":3}`)
		}, "sha256 is not 64 hex digits", false},
		{"reference to another object", func(_ *testing.T, _ string, ref *commonpb.Payload) {
			ref.Data = []byte(fmt.Sprintf(`{"sha256":"%s","size":3}`, strings.Repeat("ab", 32)))
		}, "is missing from the store", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			codec, err := newClaimCheckCodec(dir, threshold)
			require.NoError(t, err)
			enc, err := codec.Encode([]*commonpb.Payload{payloadOf(t, payloadBytes(256, 4))})
			require.NoError(t, err)
			ref := proto.Clone(enc[0]).(*commonpb.Payload)
			tt.spoil(t, dir, ref)
			_, err = codec.Decode([]*commonpb.Payload{ref})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Equal(t, tt.notExit, errors.Is(err, os.ErrNotExist))
		})
	}
}

func TestPayloadZlibCodec(t *testing.T) {
	codec := converter.NewZlibCodec(converter.ZlibCodecOptions{})
	tests := []struct {
		name       string
		payload    *commonpb.Payload
		compressed bool
	}{
		{"repetitive text", payloadOf(t, strings.Repeat("status=ok region=ap-northeast-1\n", 4096)), true},
		{"random bytes", payloadOf(t, payloadBytes(64<<10, 5)), false}, // zlib would grow it, so it is left as is
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := codec.Encode([]*commonpb.Payload{tt.payload})
			require.NoError(t, err)
			assert.Equal(t, tt.compressed, string(enc[0].GetMetadata()[converter.MetadataEncoding]) == payloadZlibEncoding)
			assert.LessOrEqual(t, proto.Size(enc[0]), proto.Size(tt.payload))
			dec, err := codec.Decode(enc)
			require.NoError(t, err)
			assert.True(t, proto.Equal(tt.payload, dec[0]))
		})
	}
}

func TestPayloadBisect(t *testing.T) {
	probeErr := errors.New("server unreachable")
	tests := []struct {
		name    string
		lo, hi  int
		limit   int   // the largest size accepted
		failAt  int   // a probe of this size errors (0: none)
		want    int   // largest found
		wantErr error // nil, probeErr, or any error (payloadErrAny)
	}{
		{"limit inside", 1, 1 << 20, 777_777, 0, 777_777, nil},
		{"limit just above lo", 10, 100, 10, 0, 10, nil},
		{"limit just below hi", 10, 100, 99, 0, 99, nil},
		{"lo refused", 10, 100, 5, 0, 0, payloadErrAny},
		{"hi accepted", 10, 100, 100, 0, 0, payloadErrAny},
		{"probe error", 10, 100, 50, 55, 0, probeErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := payloadBisect(tt.lo, tt.hi, func(n int) (bool, error) {
				if n == tt.failAt {
					return false, probeErr
				}
				return n <= tt.limit, nil
			})
			switch tt.wantErr {
			case nil:
				require.NoError(t, s.err)
				assert.Equal(t, tt.want, s.largest)
				// Two bracket probes, then one per halving.
				assert.LessOrEqual(t, s.steps, 2+payloadBits(tt.hi-tt.lo))
			case payloadErrAny:
				assert.Error(t, s.err)
			default:
				assert.ErrorIs(t, s.err, tt.wantErr)
			}
		})
	}
}

// payloadErrAny stands for any error in a table.
var payloadErrAny = errors.New("any error")

// payloadBits is ceil(log2(n)).
func payloadBits(n int) int {
	b := 0
	for (1 << b) < n {
		b++
	}
	return b
}

func TestPayloadNamesLimit(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"*serviceerror.InvalidArgument: Blob data size exceeds limit.", true},
		{"Complete result exceeds size limit.", true},
		{"[TMPRL1103] Attempted to upload payloads with size that exceeded the error limit.", true},
		{"activity StartToClose timeout", false},
		{"", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, payloadNamesLimit(tt.text), tt.text)
	}
}

func TestPayloadSizeText(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{
		{512, "512 B"}, {1 << 10, "1 KiB"}, {1536, "1.5 KiB"}, {1 << 20, "1 MiB"}, {1_900_000, "1.81 MiB"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, payloadSizeText(tt.n))
	}
}

func TestPayloadDataFor(t *testing.T) {
	for _, wire := range []int{1000, payloadDocumentedWarn, payloadDocumentedLimit} {
		n := payloadDataFor(t, wire)
		assert.LessOrEqual(t, payloadWireSize(t, n), wire, "wire %d", wire)
		assert.Greater(t, payloadWireSize(t, n+1), wire, "wire %d", wire)
	}
}

func TestPayloadLogValue(t *testing.T) {
	l := &payloadLog{}
	l.Warn("[TMPRL1103] Attempted to upload payloads with size that exceeded the warning limit.", "PayloadSize", 524289, "PayloadSizeLimit", 524288)
	line := l.matching(payloadSDKWarning)[0]
	assert.Equal(t, "524288", payloadLogValue(line, "PayloadSizeLimit"))
	assert.Equal(t, "524289", payloadLogValue(line, "PayloadSize"))
	assert.Equal(t, "(absent)", payloadLogValue(line, "MemoSize"))
}

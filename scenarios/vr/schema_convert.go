package vr

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// The data converters of VR-04: a custom payload converter (a versioned
// envelope), an upcasting converter, and the zlib codec added to the default
// converter.

// envelopeEncoding is the metadata encoding of envelopeConverter's payloads.
const envelopeEncoding = "json/durabench-envelope"

// envelopeFormat is the version of the envelope's own layout.
const envelopeFormat = 1

// envelope is a value's JSON wrapped with the version of the layout and the
// Go type that wrote it.
type envelope struct {
	Format int             `json:"format"`
	Type   string          `json:"type"`
	Data   json.RawMessage `json:"data"`
}

// envelopeConverter is a custom payload converter writing envelopes. It
// refuses an envelope of another layout, or of another type than the one
// decoded into (unless that is an interface), rather than guessing.
type envelopeConverter struct{}

func (envelopeConverter) ToPayload(v any) (*commonpb.Payload, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", converter.ErrUnableToEncode, err)
	}
	b, err := json.Marshal(envelope{Format: envelopeFormat, Type: reflect.TypeOf(v).String(), Data: data})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", converter.ErrUnableToEncode, err)
	}
	return &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(envelopeEncoding)}, Data: b}, nil
}

func (envelopeConverter) FromPayload(p *commonpb.Payload, valuePtr any) error {
	var e envelope
	if err := json.Unmarshal(p.GetData(), &e); err != nil {
		return fmt.Errorf("%w: envelope: %v", converter.ErrUnableToDecode, err)
	}
	if e.Format != envelopeFormat {
		return fmt.Errorf("%w: envelope format %d, this converter reads %d", converter.ErrUnableToDecode, e.Format, envelopeFormat)
	}
	if t := reflect.TypeOf(valuePtr).Elem(); t.Kind() != reflect.Interface && t.String() != e.Type {
		return fmt.Errorf("%w: envelope holds a %s, not a %s", converter.ErrUnableToDecode, e.Type, t)
	}
	if err := json.Unmarshal(e.Data, valuePtr); err != nil {
		return fmt.Errorf("%w: %v", converter.ErrUnableToDecode, err)
	}
	return nil
}

func (envelopeConverter) ToString(p *commonpb.Payload) string { return string(p.GetData()) }

func (envelopeConverter) Encoding() string { return envelopeEncoding }

// envelopeDataConverter writes every value other than nil and []byte as an
// envelope.
func envelopeDataConverter() converter.DataConverter {
	return converter.NewCompositeDataConverter(converter.NewNilPayloadConverter(), converter.NewByteSlicePayloadConverter(), envelopeConverter{})
}

// schemaVersionKey is the payload metadata key in which the upcasting
// converter writes the schema version of a versioned type; v1 code wrote
// none, so a payload without it is v1.
const schemaVersionKey = "durabench-schema-version"

// upcaster rewrites the JSON of a v1 value into the JSON of the current
// version.
type upcaster struct {
	version string // the current version, written to the metadata
	fn      func(v1 []byte) ([]byte, error)
}

// upcastingConverter is the JSON payload converter with upcasters by target
// type: a payload without a schema version decoded into a type that has an
// upcaster is rewritten by it first. Its encoding is json/plain, so it
// replaces the default JSON converter for the payloads v1 wrote.
type upcastingConverter struct {
	converter.JSONPayloadConverter
	upcasters map[reflect.Type]upcaster // by pointer type, as FromPayload receives it
}

func (u *upcastingConverter) ToPayload(v any) (*commonpb.Payload, error) {
	p, err := u.JSONPayloadConverter.ToPayload(v)
	if err != nil || p == nil {
		return p, err
	}
	if up, ok := u.upcasters[reflect.PointerTo(reflect.TypeOf(v))]; ok {
		p.Metadata[schemaVersionKey] = []byte(up.version)
	}
	return p, nil
}

func (u *upcastingConverter) FromPayload(p *commonpb.Payload, valuePtr any) error {
	if up, ok := u.upcasters[reflect.TypeOf(valuePtr)]; ok && len(p.GetMetadata()[schemaVersionKey]) == 0 {
		data, err := up.fn(p.GetData())
		if err != nil {
			return fmt.Errorf("%w: upcasting a v1 payload to %T: %v", converter.ErrUnableToDecode, valuePtr, err)
		}
		p = &commonpb.Payload{Metadata: p.GetMetadata(), Data: data}
	}
	return u.JSONPayloadConverter.FromPayload(p, valuePtr)
}

// upcastingDataConverter reads v1 invoices into schemaInvoice.
func upcastingDataConverter() converter.DataConverter {
	up := upcastingConverter{upcasters: map[reflect.Type]upcaster{
		reflect.TypeFor[*schemaInvoice](): {version: "2", fn: upcastInvoiceV1},
	}}
	return converter.NewCompositeDataConverter(converter.NewNilPayloadConverter(), converter.NewByteSlicePayloadConverter(), &up)
}

// upcastInvoiceV1 rewrites a v1 invoice, whose total is a decimal string of
// euros, into v2's whole cents.
func upcastInvoiceV1(b []byte) ([]byte, error) {
	var v1 struct {
		Number   string `json:"number"`
		Customer string `json:"customer"`
		Total    string `json:"total"`
	}
	if err := json.Unmarshal(b, &v1); err != nil {
		return nil, err
	}
	cents, err := euroCents(v1.Total)
	if err != nil {
		return nil, err
	}
	return json.Marshal(schemaInvoice{Number: v1.Number, Customer: v1.Customer, Total: cents})
}

// euroCents parses a non-negative decimal amount of euros with at most two
// decimals ("12.5", "12.50", "12") into cents.
func euroCents(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > 2 {
		return 0, fmt.Errorf("total %q has more than two decimals", s)
	}
	frac += strings.Repeat("0", 2-len(frac))
	e, err := strconv.ParseUint(whole, 10, 62)
	if err != nil {
		return 0, fmt.Errorf("total %q: %w", s, err)
	}
	c, err := strconv.ParseUint(frac, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("total %q: %w", s, err)
	}
	return int64(e*100 + c), nil
}

// zlibEncoding is the metadata encoding of the SDK's zlib codec.
const zlibEncoding = "binary/zlib"

// codecDataConverter is the default data converter with the SDK's zlib codec
// added. AlwaysEncode: the codec otherwise keeps a payload that compression
// would not shrink, and the small payloads here would stay json/plain.
func codecDataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), converter.NewZlibCodec(converter.ZlibCodecOptions{AlwaysEncode: true}))
}

package reports

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durabench/durabench/harness/evidence"
)

func markdownReport(t *testing.T) *Report {
	t.Helper()
	recs := append(passUpTo("EX-01", 2), control("EX-01.inmem-restart", evidence.Failed, "lost runs | 2 of 5\nserver restarted"))
	recs = append(recs, passUpTo("VR-01", 4)...)
	recs = append(recs, rec("DX-03.l2", evidence.Failed, "dev server took 95 s to answer"))
	recs[0].Metrics = map[string]float64{"p50_ms": 1.5, "n": 1000}
	busy, quiet := 12.4, 0.3
	recs[0].HostStealPct, recs[1].HostStealPct = &busy, &quiet
	recs[1].Servers = []evidence.Server{{Persistence: "in-memory", DynamicConfig: map[string]string{"matching.enableFairness": "true"}},
		{Role: "a comparison", Persistence: "sqlite", DynamicConfig: map[string]string{"history.transferProcessorMaxPollRPS": "1000"}}}
	env := evidence.Environment{Package: "ex", Mode: "embedded", Address: "127.0.0.1:7233", Namespace: "default",
		ServerVersion: "1.32.0", SDKVersion: "1.50.0", Persistence: "sqlite", GoVersion: "go1.26.8", CPUs: 8, OS: "linux/amd64",
		DynamicConfig: map[string]string{"limit.blobSize.error": "2097152"}}
	env2 := env
	env2.Package = "vr"
	r, err := Build(testCatalog(), testCategories(), profile("min-h"),
		&evidence.Set{Records: recs, Environments: []evidence.Environment{env, env2}}, generated)
	require.NoError(t, err)
	r.Waivers = []Waiver{{Item: "OP-02", Reason: "scenarios/op is not built yet"}}
	r.CodeDigest = "sha256:0123abcd"
	return r
}

func TestWriteMarkdown(t *testing.T) {
	common := []string{
		"| 1 | ex, vr | embedded | `127.0.0.1:7233` |", // identical environments deduplicated
		"| 1 | `limit.blobSize.error` | `2097152` |",
		"★★☆☆☆ 2",
		"`go test ./scenarios/EX -run Testl2`",
		"`go test ./scenarios/EX -run Testinmem-restart`",
		`lost runs \| 2 of 5<br>server restarted`,
		"p50_ms=1.5",
		"`EX-01.inmem-restart`",
		"https://docs.temporal.io/worker-deployments",
		"| ★★★★★ | automatic routing |", // VR-01's own scale
		"| OP-02 | scenarios/op is not built yet |",
		"`sha256:0123abcd`",
		"`min-h`",
		"| `EX-01.l3` | a comparison | sqlite | `history.transferProcessorMaxPollRPS=1000` |",
	}
	for _, tc := range []struct {
		lang    string
		want    []string
		notWant []string
	}{
		{lang: "en", want: []string{
			"# Temporal durable-execution validation report",
			"## How to read this report",
			"computed by durabench from checks that ran in this run",
			"## Environment", "### Dynamic config", "## Star scale", "## Premise parameters",
			"| Duration | minutes to hours | `min-h` |",
			"## Overall rating", "- **Overall:** ★★☆☆☆ 2 (experimental)", "- **Measured:** 3 of 3 items",
			"capped at ★2: EX-01 rates 2",
			"## Summary by category", "| Category | Items | Good (★3+) | Not good (★2-) | Not measured |",
			"| **Total** | **3** | **1** | **2** | **0** |",
			"## Fail-close items", "| EX-01 Progress guarantee | ★★☆☆☆ 2 (experimental) | yes (always) | fail: caps the overall at ★2 |",
			"## Negative controls", "| `EX-01.inmem-restart` | EX-01 Progress guarantee | failed | failed | OK |",
			"| `VR-01.no-getversion` | VR-01 Workflow versioning | failed | not run | NOT OK | no evidence recorded |",
			"## EX: Execution semantics (正しさ)", "### EX-01 Progress guarantee",
			"- **Why not higher:** level 3 failed: EX-01.l3",
			"- **Basis:** measured + declared",
			"**declared**: worker deployments drain automatically (source: https://docs.temporal.io/worker-deployments)",
			"| Check | Level | Kind | Title | Outcome | Observed | Reproduce |",
			"| `EX-01.inmem-restart` | control | correctness | in-memory server restart loses runs | failed (expected: failed) |",
			"| `EX-01.l5` | 5 | timing |", "| `DX-03.l3` | 3 | correctness, pattern |",
			"- **Patterns:** a pattern of ours counts at most level 3",
			"generally available: the page marks no pre-release stage",
			"predicate: `holds`",
			"- **Stars:** ★☆☆☆☆ 1 (unsupported)",
			"- **Warnings:** DX-03 rates 1 (warning at 2 or below)",
			"| failed | dev server took 95 s to answer<br>predicate: `holds` |",
			"the host's hypervisor took 12% of the CPU while this ran",
			"### Checks judged on dedicated servers",
			"| `EX-01.l3` | judged on it | in-memory | `matching.enableFairness=true` |",
			"Dedicated server (judged on it): persistence in-memory; dynamic config `matching.enableFairness=true`",
		}, notWant: []string{"総合評価", "未測定", "took 0% of the CPU"}},
		{lang: "ja", want: []string{
			"# Temporal 耐久性実行 検証レポート",
			"## このレポートの読み方",
			"## テスト環境", "### 動的設定（Dynamic config）", "## 星評価基準", "## 前提パラメータ",
			"| 実行時間 | 分〜時間 | `min-h` |",
			"## 総合評価", "- **総合:** ★★☆☆☆ 2 (実験的)", "- **測定済み:** 3項目中 3項目",
			"★2に制限: EX-01 が ★2",
			"## カテゴリ別評価サマリー", "| カテゴリ | 項目数 | 良好 (★3+) | 不十分 (★2-) | 未測定 |",
			"| **合計** | **3** | **1** | **2** | **0** |",
			"## フェイルクローズ項目ステータス", "| EX-01 進行保証 | ★★☆☆☆ 2 (実験的) | 適用 (常に必須) | 不合格: 総合を★2に制限 |",
			"## ネガティブコントロール", "| `EX-01.inmem-restart` | EX-01 進行保証 | 失敗 | 失敗 | OK |",
			"| `VR-01.no-getversion` | VR-01 ワークフローバージョニング | 失敗 | 未実行 | NG | エビデンスなし |",
			"## EX: 実行セマンティクス (正しさ)", "### EX-01 進行保証",
			"- **上位レベルに届かない理由:** レベル3が失敗: EX-01.l3",
			"- **根拠:** 実測＋宣言",
			"**宣言**: worker deployments drain automatically（出典: https://docs.temporal.io/worker-deployments）",
			"| チェック | レベル | 種別 | タイトル | 結果 | 観測内容 | 再現コマンド |",
			"| `EX-01.inmem-restart` | コントロール | 正しさ | インメモリサーバー再起動で実行が失われる | 失敗 (期待: 失敗) |",
			"| `EX-01.l5` | 5 | タイミング |", "| `DX-03.l3` | 3 | 正しさ, パターン |",
			"- **パターン:** 自前のパターンはレベル3まで",
			"一般提供（GA）: the page marks no pre-release stage",
			"判定述語: `holds`",
			"| EX-01 概要 3 | 失敗: EX-01.l3 |",
			"- **評価:** ★☆☆☆☆ 1 (未対応)",
			"- **警告:** DX-03 が ★1（★2以下で警告）",
			"| 失敗 | dev server took 95 s to answer<br>判定述語: `holds` |",
			"ホストのハイパーバイザーがCPU時間の12%を奪った",
			"### 専用サーバーで判定したチェック",
			"| `EX-01.l3` | このサーバーで判定 | in-memory | `matching.enableFairness=true` |",
			"専用サーバー（このサーバーで判定）: 永続化 in-memory、動的設定 `matching.enableFairness=true`",
		}, notWant: []string{"## Overall rating", "not measured", "Why not higher", "| passed |"}},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, WriteMarkdown(&buf, markdownReport(t), tc.lang))
			out := buf.String()
			for _, w := range append(common, tc.want...) {
				assert.Contains(t, out, w)
			}
			for _, w := range tc.notWant {
				assert.NotContains(t, out, w)
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "|") {
					assert.True(t, strings.HasSuffix(line, " |"), "table row is one line: %q", line)
				}
			}
		})
	}
}

func TestWriteMarkdownNotMeasured(t *testing.T) {
	r := build(t, profile("min-h"), rec("DX-03.l2", evidence.NotMeasured, "TEMPORAL_ADDRESS is set; cannot kill the server"))
	for lang, want := range map[string]string{
		"en": "- **Stars:** — not measured — level 2 could not be measured: DX-03.l2 (not measured: TEMPORAL_ADDRESS is set; cannot kill the server)",
		"ja": "- **評価:** — 未測定 — レベル2を測定できず: DX-03.l2 (未測定: TEMPORAL_ADDRESS is set; cannot kill the server)",
	} {
		var buf bytes.Buffer
		require.NoError(t, WriteMarkdown(&buf, r, lang))
		assert.Contains(t, buf.String(), want, lang)
		assert.Contains(t, buf.String(), "| DX-03 | ", lang)
	}
}

func TestWriteMarkdownUnknownLanguage(t *testing.T) {
	err := WriteMarkdown(&bytes.Buffer{}, markdownReport(t), "fr")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"fr"`)
}

func TestCell(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a|b", `a\|b`},
		{"a\nb", "a<br>b"},
		{"a\r\nb", "a<br>b"},
		{"plain", "plain"},
	} {
		assert.Equal(t, tc.want, cell(tc.in), tc.in)
	}
	assert.Equal(t, "`a|b`", code("a|b"), "cell escapes the pipe later, which GFM honours inside code spans")
	assert.Equal(t, "``a `x` b``", code("a `x` b"))
	assert.Equal(t, "`` `x` ``", code("`x`"))
	assert.Equal(t, "—", code(""))
	assert.Equal(t, "&lt;nil>", txt("<nil>"))
	assert.Equal(t, "—", starBar(0))
	assert.Equal(t, "★★★☆☆", starBar(3))
}

package reports

// texts is everything the markdown renderer says in one language. Catalog
// text (names, titles, level summaries) comes from the catalog's EN/JA fields
// through pick; observed details are printed as recorded.
type texts struct {
	ja bool

	title, generated                 string
	howToReadHeading, howToRead      string
	environment, environmentNone     string
	environmentCols                  []string
	dynamicConfig, dynamicConfigNone string
	dynamicConfigCols                []string
	dedicated, dedicatedNone         string
	dedicatedIntro, onDedicated      string
	judgedOn                         string
	dedicatedCols                    []string
	starScale                        string
	starScaleCols                    []string
	starMeaningsJA                   [5]string // criteria.StarScale carries English meanings only
	premise                          string
	premiseCols                      []string
	overall                          string
	overallStars, overallMean        string
	overallMeasured, measuredOf      string
	overallCap, capped, notCapped    string
	capNotMeasured, capRates         string
	overallWarnings, warning, none   string
	summary, total                   string
	summaryCols                      []string
	glance                           string
	glanceCols                       []string
	failClose, failCloseRule         string
	failCloseCols                    []string
	noFailClose                      string
	controls, controlsIntro          string
	controlsCols                     []string
	noControls, ok, notOK            string
	itemStars, itemBasis             string
	itemFailClose, itemWarnRule      string
	warnRule                         string
	itemReason, itemEvaluates        string
	itemScale, itemLadder            string
	itemChecks, itemCharts           string
	scaleCols, ladderCols, checkCols []string
	controlLevel, expected           string
	notMeasured, noEvidence, metrics string
	hostSteal                        string // %.0f: the CPU share a hypervisor took while a check ran
	reasonFailed, reasonMissing      string
	declared, declaredGA, unreached  string
	waivers, waiversIntro            string
	waiverCols                       []string
	codeDigest                       string
	itemPattern                      string
	kinds                            [3]string // correctness, timing, pattern
	predicate, attempt               string

	rules    map[string]string // criteria.FailClose rule
	applies  [2]string         // {does not apply, applies}
	fcStatus map[string]string // criteria.FailCloseStatus.Status
	outcomes map[string]string // check and level outcomes
	bases    map[string]string // criteria.Rating.Basis
}

// pick chooses the catalog field of this language.
func (t *texts) pick(en, ja string) string {
	if t.ja {
		return ja
	}
	return en
}

// word translates a fixed value, leaving unknown ones as they are.
func word(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return k
}

var textsEN = &texts{
	title:     "Temporal durable-execution validation report",
	generated: "Generated %s from the evidence of this run · premise profile `%s`.",

	howToReadHeading: "How to read this report",
	howToRead: "Every star in this report was computed by durabench from checks that ran in this run; nothing is typed in by hand. " +
		"An item's stars are the highest level of its ladder whose checks, and those of every level below, all passed. " +
		"The basis says where the stars come from: *measured* means every counted level was observed here; " +
		"*measured + declared* means a level that cannot be measured on one machine was granted from a cited source, and the ladder marks it **declared**. " +
		"An item whose level 2 could not be measured gets no stars (— not measured) and does not count toward the mean. " +
		"A declared level's source must state the feature as generally available; a level that is neither measurable here nor declarable is marked **unreached**, with the reason. " +
		"A check's kind is *correctness* or *timing* (its outcome depends on how fast the host is); only a timing check may be rerun when the gate finds a regression, and then it is rated on the rerun while both attempts are shown. " +
		"A correctness check counts on its first failure. A check marked *pattern* measures our own code built with the SDK, not a platform capability; its item says what that is worth. " +
		"Each check names the predicate that decided it; a negative control runs the predicate of the check it guards. " +
		"Each check lists the command that reproduces it; `make report` reruns every scenario and renders this report again.",

	environment:       "Environment",
	environmentNone:   "No environment was recorded with this evidence.",
	environmentCols:   []string{"#", "Packages", "Mode", "Address", "Namespace", "Persistence", "Server", "SDK", "Go", "OS", "CPUs"},
	dynamicConfig:     "Dynamic config",
	dynamicConfigNone: "The server ran without dynamic-config overrides.",
	dynamicConfigCols: []string{"Environment #", "Key", "Value"},
	dedicated:         "Checks judged on dedicated servers",
	dedicatedNone:     "Every check was judged on its package's server.",
	dedicatedIntro:    "These checks ran on servers of their own, started with the settings listed (a check judged on one may have another outcome on a server with the default configuration; the others only show a comparison).",
	dedicatedCols:     []string{"Check", "Use", "Persistence", "Dynamic config"},
	onDedicated:       "Dedicated server (%s): persistence %s; dynamic config %s",
	judgedOn:          "judged on it",

	starScale:     "Star scale",
	starScaleCols: []string{"Stars", "Label", "Meaning"},

	premise:     "Premise parameters",
	premiseCols: []string{"Parameter", "Value", "Key"},

	overall:         "Overall rating",
	overallStars:    "Overall",
	overallMean:     "Mean of measured items",
	overallMeasured: "Measured",
	measuredOf:      "%d of %d items",
	overallCap:      "Fail-close cap",
	capped:          "capped at ★2: %s",
	notCapped:       "not capped: every applicable fail-close item rates 3 or more",
	capNotMeasured:  "%s not measured",
	capRates:        "%s rates %d",
	overallWarnings: "Warnings",
	warning:         "%s rates %d (warning at %d or below)",
	none:            "none",

	summary:     "Summary by category",
	total:       "Total",
	summaryCols: []string{"Category", "Items", "Good (★3+)", "Not good (★2-)", "Not measured"},

	glance:     "Items at a glance",
	glanceCols: []string{"ID", "Item", "Stars", "Basis", "Checks passed"},

	failClose: "Fail-close items",
	failCloseRule: "If an applicable fail-close item rates 2 or less, or could not be measured, the overall rating is capped at 2. " +
		"VR-01 applies only when the premise duration is minutes or longer; otherwise it is a bonus item.",
	failCloseCols: []string{"Item", "Stars", "Applies", "Status"},
	noFailClose:   "The catalog has no fail-close items.",

	controls:      "Negative controls",
	controlsIntro: "Each negative control runs a check against a deliberately broken setup; it must fail, which shows that the check can fail.",
	controlsCols:  []string{"Control check", "Item", "Expected", "Observed", "Result", "Detail"},
	noControls:    "The catalog has no negative controls.",
	ok:            "OK",
	notOK:         "NOT OK",

	itemStars:     "Stars",
	itemBasis:     "Basis",
	itemFailClose: "Fail-close",
	itemWarnRule:  "Warning rule",
	warnRule:      "a rating of ★%d or less raises a warning (no cap)",
	itemReason:    "Why not higher",
	itemEvaluates: "What it evaluates",
	itemScale:     "Scale of this item",
	itemLadder:    "Ladder",
	itemChecks:    "Checks",
	itemCharts:    "Charts",
	scaleCols:     []string{"Stars", "Meaning"},
	ladderCols:    []string{"Level", "Summary", "Status"},
	checkCols:     []string{"Check", "Level", "Kind", "Title", "Outcome", "Observed", "Reproduce"},
	controlLevel:  "control",
	expected:      "expected: failed",
	notMeasured:   "not measured",
	noEvidence:    "no evidence recorded",
	metrics:       "metrics",
	hostSteal:     "the host's hypervisor took %.0f%% of the CPU while this ran: timings are slower than the platform's own",
	reasonFailed:  "level %d failed: %s",
	reasonMissing: "level %d could not be measured: %s",
	declared:      "**declared**: %s (source: %s)",
	declaredGA:    "generally available: %s",
	unreached:     "**unreached**: %s",
	waivers:       "Waivers",
	waiversIntro: "The gate lets these fail-close items through while they are not measured, or while their negative control has not run; " +
		"each is named in `reports/waivers.yaml` with its reason. A waiver never excuses an item that was measured and rates 2 or less, nor a control that passed.",
	waiverCols:  []string{"Item", "Reason"},
	codeDigest:  "Code digest (criteria, harness, scenarios, reports, cmd, fixtures, go.mod, go.sum, waivers): `%s`.",
	itemPattern: "Patterns",
	kinds:       [3]string{"correctness", "timing", "pattern"},
	predicate:   "predicate",
	attempt:     "attempt %d",

	rules:    map[string]string{"always": "always", "duration>=minutes": "when the duration is minutes or longer"},
	applies:  [2]string{"no (bonus item)", "yes"},
	fcStatus: map[string]string{"pass": "pass", "fail": "fail: caps the overall at ★2", "not measured": "not measured: caps the overall at ★2", "bonus": "bonus: no cap"},
	outcomes: map[string]string{"passed": "passed", "failed": "failed", "not_measured": "not measured", NotRun: "not run", "declared": "declared", "unreached": "unreached"},
	bases:    map[string]string{"measured": "measured", "measured+declared": "measured + declared", "not measured": "not measured"},
}

var textsJA = &texts{
	ja:        true,
	title:     "Temporal 耐久性実行 検証レポート",
	generated: "生成日時 %s（今回の実行のエビデンスから生成）・ 前提プロファイル `%s`",

	howToReadHeading: "このレポートの読み方",
	howToRead: "このレポートの星はすべて、今回の実行で実際に走ったチェックから durabench が計算したものであり、手入力の評価は一つもありません。" +
		"各項目の星は、ラダー（段階）のうち、そのレベルと下位のすべてのレベルのチェックが合格した最高レベルです。" +
		"「根拠」は星の出どころを示します。*実測* は数えたすべてのレベルをこの実行で観測したこと、" +
		"*実測＋宣言* は単一マシンでは測定できないレベルを出典付きで認めたことを意味し、ラダー表では **宣言** として区別します。" +
		"レベル2を測定できなかった項目には星を付けず（— 未測定）、平均にも含めません。" +
		"宣言レベルの出典は、その機能を一般提供（GA）と明記していなければなりません。ここで測定も宣言もできないレベルは、理由とともに **未到達** と示します。" +
		"チェックの種別は *正しさ* か *タイミング*（結果がホストの速さに左右される）です。ゲートが後退を検出したとき再実行できるのはタイミングのチェックだけで、その場合は再実行の結果で評価し、両方の試行を示します。" +
		"正しさのチェックは最初の失敗で確定します。*パターン* と記したチェックは、プラットフォームの機能ではなくSDKで組んだ本ハーネス自身のコードを測っており、その価値は項目ごとに記載しています。" +
		"各チェックには判定した述語の名前を示し、否定対照は守るチェックと同じ述語を実行します。" +
		"各チェックには再現コマンドを記載しています。`make report` で全シナリオを再実行し、このレポートを再生成できます。",

	environment:       "テスト環境",
	environmentNone:   "このエビデンスには環境の記録がありません。",
	environmentCols:   []string{"#", "パッケージ", "モード", "アドレス", "名前空間", "永続化", "サーバー", "SDK", "Go", "OS", "CPU数"},
	dynamicConfig:     "動的設定（Dynamic config）",
	dynamicConfigNone: "サーバーは動的設定の上書きなしで動作しました。",
	dynamicConfigCols: []string{"環境 #", "キー", "値"},
	dedicated:         "専用サーバーで判定したチェック",
	dedicatedNone:     "すべてのチェックはパッケージ共通のサーバーで判定されました。",
	dedicatedIntro:    "以下のチェックは、記載の設定で起動した専用サーバー上で実行されました（そのサーバーで判定したチェックは、既定設定のサーバーでは結果が異なる可能性があります。それ以外は比較のために示すものです）。",
	dedicatedCols:     []string{"チェック", "用途", "永続化", "動的設定"},
	onDedicated:       "専用サーバー（%s）: 永続化 %s、動的設定 %s",
	judgedOn:          "このサーバーで判定",

	starScale:      "星評価基準",
	starScaleCols:  []string{"星", "ラベル", "定義"},
	starMeaningsJA: [5]string{"機能なし、または動作しない。自前で作る必要がある", "動作するが重大な制約あり。PoCでも苦戦する", "主要ケースは動作。エッジケースに弱く、監視は自前", "安定。PoCから本番に必要な作業が明確", "そのまま本番で使用可能。ベストプラクティス確立"},

	premise:     "前提パラメータ",
	premiseCols: []string{"パラメータ", "値", "キー"},

	overall:         "総合評価",
	overallStars:    "総合",
	overallMean:     "測定済み項目の平均",
	overallMeasured: "測定済み",
	measuredOf:      "%[2]d項目中 %[1]d項目",
	overallCap:      "フェイルクローズ上限",
	capped:          "★2に制限: %s",
	notCapped:       "上限なし: 適用されるフェイルクローズ項目はすべて★3以上",
	capNotMeasured:  "%s 未測定",
	capRates:        "%s が ★%d",
	overallWarnings: "警告",
	warning:         "%s が ★%d（★%d以下で警告）",
	none:            "なし",

	summary:     "カテゴリ別評価サマリー",
	total:       "合計",
	summaryCols: []string{"カテゴリ", "項目数", "良好 (★3+)", "不十分 (★2-)", "未測定"},

	glance:     "全項目一覧",
	glanceCols: []string{"ID", "項目", "評価", "根拠", "合格チェック"},

	failClose: "フェイルクローズ項目ステータス",
	failCloseRule: "適用されるフェイルクローズ項目が★2以下、または測定できなかった場合、総合評価は★2に制限されます。" +
		"VR-01 は前提の実行時間が分以上のときのみ適用され、それ以外はボーナス項目です。",
	failCloseCols: []string{"項目", "評価", "適用", "ステータス"},
	noFailClose:   "カタログにフェイルクローズ項目はありません。",

	controls:      "ネガティブコントロール",
	controlsIntro: "ネガティブコントロールは、意図的に壊した構成に対してチェックを実行します。必ず失敗しなければならず、チェックが失敗し得ることを示します。",
	controlsCols:  []string{"コントロールチェック", "項目", "期待", "観測結果", "判定", "詳細"},
	noControls:    "カタログにネガティブコントロールはありません。",
	ok:            "OK",
	notOK:         "NG",

	itemStars:     "評価",
	itemBasis:     "根拠",
	itemFailClose: "フェイルクローズ",
	itemWarnRule:  "警告ルール",
	warnRule:      "★%d以下で警告（上限なし）",
	itemReason:    "上位レベルに届かない理由",
	itemEvaluates: "評価内容",
	itemScale:     "この項目の評価尺度",
	itemLadder:    "ラダー",
	itemChecks:    "チェック",
	itemCharts:    "グラフ",
	scaleCols:     []string{"星", "定義"},
	ladderCols:    []string{"レベル", "概要", "ステータス"},
	checkCols:     []string{"チェック", "レベル", "種別", "タイトル", "結果", "観測内容", "再現コマンド"},
	controlLevel:  "コントロール",
	expected:      "期待: 失敗",
	notMeasured:   "未測定",
	noEvidence:    "エビデンスなし",
	metrics:       "メトリクス",
	hostSteal:     "実行中、ホストのハイパーバイザーがCPU時間の%.0f%%を奪った（タイミングはプラットフォーム本来より遅い）",
	reasonFailed:  "レベル%dが失敗: %s",
	reasonMissing: "レベル%dを測定できず: %s",
	declared:      "**宣言**: %s（出典: %s）",
	declaredGA:    "一般提供（GA）: %s",
	unreached:     "**未到達**: %s",
	waivers:       "免除",
	waiversIntro: "以下のフェイルクローズ項目は、未測定である間、または否定対照が未実行である間、ゲートを通過させる。" +
		"各項目は理由とともに `reports/waivers.yaml` に記載されている。免除は、測定済みで星2以下の項目や、成功してしまった対照を許すことはない。",
	waiverCols:  []string{"項目", "理由"},
	codeDigest:  "コードダイジェスト（criteria、harness、scenarios、reports、cmd、fixtures、go.mod、go.sum、免除ファイル）: `%s`。",
	itemPattern: "パターン",
	kinds:       [3]string{"正しさ", "タイミング", "パターン"},
	predicate:   "判定述語",
	attempt:     "試行%d",

	rules:    map[string]string{"always": "常に必須", "duration>=minutes": "実行時間が分以上のとき"},
	applies:  [2]string{"非適用（ボーナス項目）", "適用"},
	fcStatus: map[string]string{"pass": "合格", "fail": "不合格: 総合を★2に制限", "not measured": "未測定: 総合を★2に制限", "bonus": "ボーナス: 上限なし"},
	outcomes: map[string]string{"passed": "成功", "failed": "失敗", "not_measured": "未測定", NotRun: "未実行", "declared": "宣言", "unreached": "未到達"},
	bases:    map[string]string{"measured": "実測", "measured+declared": "実測＋宣言", "not measured": "未測定"},
}

var languages = map[string]*texts{"en": textsEN, "ja": textsJA}

package criteria

import "slices"

// Categories returns the eleven categories in report order.
func Categories() []Category {
	return []Category{
		{ID: "EX", NameEN: "Execution semantics", NameJA: "実行セマンティクス", Axis: "正しさ"},
		{ID: "RT", NameEN: "Retry and timeout", NameJA: "リトライ＆タイムアウト", Axis: "耐障害"},
		{ID: "WF", NameEN: "Workflow primitives", NameJA: "ワークフロープリミティブ", Axis: "表現力"},
		{ID: "SG", NameEN: "Signals and events", NameJA: "シグナル＆イベント", Axis: "反応性"},
		{ID: "VR", NameEN: "Versioning and migration", NameJA: "バージョニング＆マイグレーション", Axis: "進化性"},
		{ID: "CP", NameEN: "Compensation and recovery", NameJA: "補償＆復旧", Axis: "回復力"},
		{ID: "PF", NameEN: "Performance and overhead", NameJA: "パフォーマンス＆オーバーヘッド", Axis: "効率性"},
		{ID: "OP", NameEN: "Operations", NameJA: "運用", Axis: "運用性"},
		{ID: "OB", NameEN: "Observability", NameJA: "可観測性", Axis: "可視性"},
		{ID: "DX", NameEN: "Developer experience", NameJA: "開発者体験", Axis: "生産性"},
		{ID: "AI", NameEN: "AI / agent integration", NameJA: "AI/エージェント統合", Axis: "拡張性"},
	}
}

// Catalog returns the 58 items in id order. Each call builds a fresh copy, so
// callers may modify what they get.
func Catalog() []Item {
	return slices.Concat(
		exItems(), rtItems(), wfItems(), sgItems(), vrItems(), cpItems(),
		pfItems(), opItems(), obItems(), dxItems(), aiItems(),
	)
}

// level builds a measured rung of a ladder.
func level(stars int, en, ja string, checks ...Check) Level {
	return Level{Stars: stars, SummaryEN: en, SummaryJA: ja, Checks: checks}
}

// declared builds a rung granted from a cited source because nothing on one
// machine can measure it; ga says where the source states the feature as
// generally available.
func declared(stars int, en, ja, claim, source, ga string) Level {
	return Level{Stars: stars, SummaryEN: en, SummaryJA: ja, Declared: &Declaration{Claim: claim, Source: source, GA: ga}}
}

// unreached builds a rung that one machine cannot measure and that may not
// be declared (the feature is experimental or in preview): the rating stops
// below it, with the reason shown.
func unreached(stars int, en, ja, reason string) Level {
	return Level{Stars: stars, SummaryEN: en, SummaryJA: ja, Unreached: reason}
}

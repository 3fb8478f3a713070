//! The page's stylesheet, inline: a grid of cards that folds to one column on a phone, and
//! colours that say the state without relying on colour alone (every state is also written).

/// The CSS.
pub const CSS: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:15px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#1d2228}\
header{padding:12px 16px;background:#1d2228;color:#fff}\
h1{margin:0;font-size:20px}\
h2{font-size:17px;margin:20px 0 8px}\
.meta{margin:2px 0 0;color:#b8c0c8;font-size:13px}\
main{padding:0 12px 24px;max-width:1200px;margin:auto}\
.empty{color:#5c6670}\
table{width:100%;border-collapse:collapse;background:#fff}\
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e6ea;vertical-align:top}\
.sev{font-weight:600;text-transform:uppercase;font-size:12px}\
.critical{color:#b3261e}.warning{color:#9a6700}\
.pending{color:#5c6670;font-style:italic}\
.state{font-size:12px;padding:2px 8px;border-radius:10px;margin-left:8px;vertical-align:middle;background:#d9dde2}\
.s-up{background:#d4edda}.s-down,.s-saturated{background:#f8d7da}\
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:10px}\
.pool{background:#fff;border-radius:6px;padding:10px 12px;border-left:4px solid #2e7d32}\
.pool.hot{border-left-color:#b3261e}.pool.warm{border-left-color:#d29922}\
.pool.stale{opacity:.6}\
.name{font-weight:600;word-break:break-all}\
.kind{color:#5c6670;font-size:12px}\
.bar{height:8px;background:#e3e6ea;border-radius:4px;margin:6px 0;overflow:hidden}\
.bar i{display:block;height:100%;background:#2e7d32}\
.hot .bar i{background:#b3261e}.warm .bar i{background:#d29922}\
.nums{font-variant-numeric:tabular-nums}\
svg{display:block;width:100%;height:32px;margin-top:4px}\
svg polyline{fill:none;stroke:#3b6fb6;stroke-width:1.5}\
svg line{stroke:#b3261e;stroke-dasharray:3 3;stroke-width:1}\
.holders,.link{margin:6px 0 0;padding:0;list-style:none;font-size:13px;color:#3c444d}\
.err{color:#b3261e;font-size:13px}\
@media (max-width:600px){td:nth-child(2),th:nth-child(2){display:none}}\
";

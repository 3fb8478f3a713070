//! HTML escaping and the string builder the page is written with: [`Html::text`] escapes,
//! [`Html::raw`] is for the page's own markup only.

use std::fmt::Write as _;

/// `s` with `&`, `<`, `>`, `"` and `'` escaped: safe as element text and in quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s);
    out
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The page being written.
#[derive(Debug, Default)]
pub struct Html {
    out: String,
}

impl Html {
    /// Appends the page's own markup, unescaped. Never pass a value through it.
    pub fn raw(&mut self, markup: &str) {
        self.out.push_str(markup);
    }

    /// Appends a value, escaped.
    pub fn text(&mut self, value: &str) {
        push_escaped(&mut self.out, value);
    }

    /// `<tag class="class">value</tag>`, the value escaped.
    pub fn element(&mut self, tag: &str, class: &str, value: &str) {
        let _ = write!(self.out, "<{tag} class=\"{class}\">");
        self.text(value);
        let _ = write!(self.out, "</{tag}>");
    }

    /// The page.
    pub fn finish(self) -> String {
        self.out
    }
}

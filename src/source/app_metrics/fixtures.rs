//! Expositions in the shape each supported library serves, for the parser's and the presets'
//! tests and as seeds of the random and fuzz tests. Each file says where its names come from;
//! the HikariCP one is reconstructed, not captured (see its header).

/// `(library, exposition)` pairs.
pub const FIXTURES: [(&str, &str); 6] = [
    ("hikaricp", include_str!("fixtures/hikaricp.txt")),
    ("go_sql", include_str!("fixtures/go_sql.txt")),
    ("pgxpool", include_str!("fixtures/pgxpool.txt")),
    ("node_postgres", include_str!("fixtures/node_postgres.txt")),
    ("otel", include_str!("fixtures/otel_new.txt")),
    ("otel_old", include_str!("fixtures/otel_old.txt")),
];

-- Größe, naïve café, 日本語, emoji 😀
comment on table a is 'Straße';

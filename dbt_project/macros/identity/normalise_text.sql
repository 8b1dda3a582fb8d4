{#
    Match form of free text (names, cities, companies): lower case, accents stripped (ß -> ss,
    æ -> ae, ø -> o, ...), apostrophes and dots removed (O'Brien -> obrien, St. -> st), any other run
    of punctuation or whitespace turned into one space, trimmed; empty -> null.
    Letters of other scripts are kept as they are.
#}
{% macro normalise_text(expr) -%}
    {%- set folded = strip_accents(ascii_fold_letters('lower(' ~ expr ~ ')')) -%}
    {%- set no_marks = regexp_replace_all(folded, "[''’‘`.]", '') -%}
    {%- set spaced = regexp_replace_all(no_marks, '[[:punct:][:space:]“”«»–—·]+', ' ') -%}
    nullif(trim({{ spaced }}), '')
{%- endmacro %}


{#- Lower-case letters that Unicode decomposition does not reduce to ASCII, spelled out in ASCII. -#}
{% macro ascii_fold_letters(expr) -%}
    {%- set folds = [('ß', 'ss'), ('æ', 'ae'), ('ø', 'o'), ('œ', 'oe'), ('ł', 'l'), ('đ', 'd'), ('ð', 'd'), ('þ', 'th')] -%}
    {%- set sql = namespace(text=expr) -%}
    {%- for letter, ascii in folds -%}
        {%- set sql.text = "replace(" ~ sql.text ~ ", '" ~ letter ~ "', '" ~ ascii ~ "')" -%}
    {%- endfor -%}
    {{ sql.text }}
{%- endmacro %}

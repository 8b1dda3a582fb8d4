{#-
    Text with diacritics removed: 'José Müller' -> 'Jose Muller'. Letters that do not decompose
    (ß, æ, ø, ł, œ, ...) are left alone; normalise_text folds them first.
-#}
{% macro strip_accents(expr) -%}
    {{ return(adapter.dispatch('strip_accents', 'mos_pipelines')(expr)) }}
{%- endmacro %}

{% macro default__strip_accents(expr) -%}
    translate(
        {{ expr }},
        'ÀÁÂÃÄÅàáâãäåĀāĂăĄąÇçĆćČčĎďÈÉÊËèéêëĒēĖėĘęĚěĞğÌÍÎÏìíîïĪīİıÑñŃńŇňÒÓÔÕÖòóôõöŌōŐőŘřŚśŠšŞşŤťÙÚÛÜùúûüŪūŮůŰűÝýÿŹźŻżŽž',
        'AAAAAAaaaaaaAaAaAaCcCcCcDdEEEEeeeeEeEeEeEeGgIIIIiiiiIiIiNnNnNnOOOOOoooooOoOoRrSsSsSsTtUUUUuuuuUuUuUuYyyZzZzZz'
    )
{%- endmacro %}

{% macro duckdb__strip_accents(expr) -%}
    strip_accents({{ expr }})
{%- endmacro %}

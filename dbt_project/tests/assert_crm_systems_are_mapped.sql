{#
    Warns (does not fail) while contacts arrive from a crm_contacts/<system>/ folder that has no
    staging model of its own. They still flow through the generic mapping; this lists the systems
    so someone writes a mapping (or adds the name to var mos__crm_mapped_systems).
#}
{{ config(severity='warn') }}

select
    source_system,
    count(*) as contact_count
from {{ ref('stg_crm__unmapped_contacts') }}
group by source_system

{#
    One row per CRM contact record with the match forms of its identifiers: the input of
    probabilistic matching (int_crm_contacts__matched) and of the identity graph. The expressions
    are the macros in macros/identity/, shared with the events and orders side.
#}
with

contacts as (

    select * from {{ ref('int_crm_contacts__unioned') }}

),

phone_numbers as (

    select * from {{ ref('int_phone_numbers__e164') }}

),

nicknames as (

    select * from {{ ref('nicknames') }}

),

names_split as (

    -- systems that only export a full name (webinar): first token -> first name, rest -> last name
    select
        *,
        case
            when first_name is null and last_name is null then {{ first_token('trim(full_name)') }}
            else first_name
        end as given_name,
        case
            when first_name is null and last_name is null then {{ rest_after_first_token('trim(full_name)') }}
            else last_name
        end as family_name
    from contacts

),

normalised as (

    select
        *,
        {{ normalise_name('given_name') }} as given_name_norm,
        {{ normalise_name('family_name') }} as last_name_norm,
        {{ normalise_email('email') }} as email_normalised,
        {{ normalise_company('company') }} as company_norm,
        {{ normalise_text('job_title') }} as job_title_norm,
        {{ normalise_name('full_name') }} as recorded_full_name_norm,
        {{ normalise_city('city') }} as city_norm,
        {{ normalise_postcode('postcode') }} as postcode_norm,
        {{ regexp_replace_all('phone', '[^0-9]', '') }} as phone_digits
    from names_split

),

final as (

    select
        -- keys
        'crm:' || normalised.contact_record_key as node_key,
        normalised.contact_record_key,
        normalised.source_system,
        normalised.source_record_id,

        -- normalised identifiers
        {{ canonical_first_name('normalised.given_name_norm', 'nicknames.canonical_name') }} as first_name_norm,
        normalised.last_name_norm,
        nullif(
            trim(
                coalesce({{ canonical_first_name('normalised.given_name_norm', 'nicknames.canonical_name') }}, '')
                || ' ' || coalesce(normalised.last_name_norm, '')
            ),
            ''
        ) as full_name_norm,
        normalised.email_normalised,
        {{ email_match_key('normalised.email_normalised') }} as email_match_key,
        phone_numbers.phone_e164,
        nullif(normalised.phone_digits, '') as phone_digits,
        normalised.company_norm,
        normalised.job_title_norm,
        normalised.recorded_full_name_norm,
        normalised.city_norm,
        normalised.postcode_norm,
        normalised.birth_date,
        normalised.country_code,

        -- original fields (given_name / family_name: first / last name, split from full_name when only that exists)
        normalised.given_name,
        normalised.family_name,
        normalised.first_name,
        normalised.last_name,
        normalised.full_name,
        normalised.email,
        normalised.phone,
        normalised.company,
        normalised.job_title,
        normalised.country_raw,
        normalised.city,
        normalised.postcode,

        -- timestamps
        normalised.created_at,
        normalised.updated_at,
        normalised.loaded_at

    from normalised
    left join nicknames
        on normalised.given_name_norm = nicknames.nickname
    left join phone_numbers
        on
            normalised.phone = phone_numbers.phone_raw
            and coalesce(normalised.country_code, '') = coalesce(phone_numbers.country_code, '')

)

select * from final

{#-
    Firmographics per customer, all from observable data:
    - account_key: the customer's business email domain ('domain:acme.com'; the smallest one when
      several; var mos__personal_email_domains are not businesses), else the domain colleagues with
      the same normalised company name use, else 'company:<normalised company name>', else null;
    - persona and seniority from the job title by whole-word keywords (seed job_title_keywords,
      lowest priority number wins, then the longest keyword);
    - industry from the company name by whole-word keywords (seed company_industry_keywords), else the
      most common industry of the account's other contacts;
    - account_contact_count: customers sharing the account key (a company-size signal).
-#}
{{ config(materialized='table') }}

with

customers as (

    select * from {{ ref('dim_customers') }}

),

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

title_keywords as (

    select * from {{ ref('job_title_keywords') }}

),

industry_keywords as (

    select * from {{ ref('company_industry_keywords') }}

),

business_domains as (

    select
        customer_id,
        min({{ dbt.split_part('node_value', "'@'", 2) }}) as email_domain
    from identity_map
    where
        node_type = 'email'
        and {{ dbt.split_part('node_value', "'@'", 2) }} not in (
            {{ quoted_list(var('mos__personal_email_domains')) }}
        )
    group by customer_id

),

normalised as (

    select
        customers.customer_id,
        customers.company,
        customers.job_title,
        {{ normalise_company('customers.company') }} as company_norm,
        ' ' || {{ normalise_text('customers.job_title') }} || ' ' as title_words,
        business_domains.email_domain
    from customers
    left join business_domains
        on customers.customer_id = business_domains.customer_id

),

company_domains_ranked as (

    -- the business domain most customers of a normalised company name use
    select
        company_norm,
        email_domain,
        row_number() over (
            partition by company_norm order by count(*) desc, email_domain
        ) as row_rank
    from normalised
    where company_norm is not null and email_domain is not null
    group by company_norm, email_domain

),

company_domains as (

    select
        company_norm,
        email_domain
    from company_domains_ranked
    where row_rank = 1

),

keyed as (

    select
        normalised.*,
        case
            when normalised.email_domain is not null then 'domain:' || normalised.email_domain
            when company_domains.email_domain is not null then 'domain:' || company_domains.email_domain
            when normalised.company_norm is not null then 'company:' || normalised.company_norm
        end as account_key,
        case
            when normalised.email_domain is not null then 'email_domain'
            when company_domains.email_domain is not null then 'company_domain'
            when normalised.company_norm is not null then 'company_name'
        end as account_key_source
    from normalised
    left join company_domains
        on normalised.company_norm = company_domains.company_norm

),

title_matches as (

    select
        keyed.customer_id,
        title_keywords.dimension,
        title_keywords.value,
        row_number() over (
            partition by keyed.customer_id, title_keywords.dimension
            order by title_keywords.priority asc, length(title_keywords.keyword) desc, title_keywords.keyword
        ) as match_rank
    from keyed
    inner join title_keywords
        on keyed.title_words like '% ' || lower(title_keywords.keyword) || ' %'

),

titles as (

    select
        customer_id,
        max(case when dimension = 'persona' then value end) as persona,
        max(case when dimension = 'seniority' then value end) as seniority
    from title_matches
    where match_rank = 1
    group by customer_id

),

industry_matches_ranked as (

    select
        keyed.customer_id,
        industry_keywords.industry,
        row_number() over (
            partition by keyed.customer_id
            order by
                industry_keywords.priority asc,
                length(industry_keywords.keyword) desc,
                industry_keywords.keyword asc
        ) as row_rank
    from keyed
    inner join industry_keywords
        on ' ' || keyed.company_norm || ' ' like '% ' || lower(industry_keywords.keyword) || ' %'

),

industry_matches as (

    select
        customer_id,
        industry
    from industry_matches_ranked
    where row_rank = 1

),

account_industries_ranked as (

    select
        keyed.account_key,
        industry_matches.industry,
        row_number() over (
            partition by keyed.account_key order by count(*) desc, industry_matches.industry
        ) as row_rank
    from keyed
    inner join industry_matches
        on keyed.customer_id = industry_matches.customer_id
    where keyed.account_key is not null
    group by keyed.account_key, industry_matches.industry

),

account_industries as (

    select
        account_key,
        industry
    from account_industries_ranked
    where row_rank = 1

),

account_sizes as (

    select
        account_key,
        count(*) as account_contact_count
    from keyed
    where account_key is not null
    group by account_key

),

final as (

    select
        -- keys
        keyed.customer_id,
        keyed.account_key,

        -- dimensions
        keyed.account_key_source,
        keyed.company,
        keyed.email_domain,
        coalesce(industry_matches.industry, account_industries.industry) as industry,
        case
            when industry_matches.industry is not null then 'company_name'
            when account_industries.industry is not null then 'account'
        end as industry_source,
        keyed.job_title,
        titles.persona,
        titles.seniority,

        -- metrics
        account_sizes.account_contact_count

    from keyed
    left join titles
        on keyed.customer_id = titles.customer_id
    left join industry_matches
        on keyed.customer_id = industry_matches.customer_id
    left join account_industries
        on keyed.account_key = account_industries.account_key
    left join account_sizes
        on keyed.account_key = account_sizes.account_key

)

select * from final

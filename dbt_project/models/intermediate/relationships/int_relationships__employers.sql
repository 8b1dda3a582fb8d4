-- Every CRM record of every customer that names another company than the customer's golden record (normalised
-- names: "Acme S.A." is Acme), with the account that company belongs to and when the record was last updated: a
-- customer whose older records name another account than its current one moved company.
with

identity_map as (

    select * from {{ ref('dim_customer_identity_map') }}

),

crm_contacts as (

    select * from {{ ref('int_crm_contacts__normalised') }}

),

firmographics as (

    select * from {{ ref('int_customers__firmographics') }}

),

company_accounts_ranked as (

    -- the account most customers of a normalised company name are keyed to
    select
        {{ normalise_company('company') }} as company_norm,
        account_key,
        -- the expression, not its alias: Spark has no select alias in a window of the same select
        row_number() over (
            partition by {{ normalise_company('company') }} order by count(*) desc, account_key
        ) as row_rank
    from firmographics
    where company is not null and account_key is not null
    group by company_norm, account_key

),

company_accounts as (

    select
        company_norm,
        account_key
    from company_accounts_ranked
    where row_rank = 1

),

final as (

    select
        identity_map.customer_id,
        coalesce(company_accounts.account_key, 'company:' || crm_contacts.company_norm) as account_key,
        crm_contacts.company,
        coalesce(crm_contacts.updated_at, crm_contacts.created_at) as seen_at
    from identity_map
    inner join crm_contacts
        on identity_map.node_key = crm_contacts.node_key
    left join company_accounts
        on crm_contacts.company_norm = company_accounts.company_norm
    left join firmographics as current_company
        on identity_map.customer_id = current_company.customer_id
    where
        crm_contacts.company_norm is not null
        and crm_contacts.company_norm is distinct from {{ normalise_company('current_company.company') }}

)

select * from final

{{ config(meta={"dagster": {"ref": {"name": "fct_attributed_conversions"}}}) }}

-- Every conversion has credits summing to exactly 1 (within 1e-9) under every attribution model,
-- and every model credits every conversion.
with

conversions as (

    select * from {{ ref('fct_conversions') }}

),

attributed_conversions as (

    select * from {{ ref('fct_attributed_conversions') }}

),

attribution_models as (

    select distinct attribution_model from attributed_conversions

),

credit_sums as (

    select
        conversion_id,
        attribution_model,
        sum(credit) as credit_sum
    from attributed_conversions
    group by conversion_id, attribution_model

),

expected as (

    select
        conversions.conversion_id,
        attribution_models.attribution_model
    from conversions
    cross join attribution_models

),

final as (

    select
        expected.conversion_id,
        expected.attribution_model,
        credit_sums.credit_sum
    from expected
    left join credit_sums
        on
            expected.conversion_id = credit_sums.conversion_id
            and expected.attribution_model = credit_sums.attribution_model
    where credit_sums.credit_sum is null or abs(credit_sums.credit_sum - 1) > 1e-9

)

select * from final

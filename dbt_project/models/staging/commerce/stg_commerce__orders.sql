with

source as (

    select * from {{ source('commerce', 'orders') }}
    where {{ not_erased(['email', 'user_id', 'order_id']) }}

),

renamed as (

    select
        -- keys
        {{ clean_string('order_id') }} as order_id,
        {{ clean_string('user_id') }} as user_id,

        -- dimensions
        {{ clean_string('email') }} as email,
        upper({{ clean_string('currency') }}) as currency,
        {{ clean_string('status') }} as order_status,

        -- metrics
        amount,

        -- timestamps
        created_at,
        _loaded_at as loaded_at,

        -- lineage
        _source_file as source_file,
        _line as source_line

    from source

),

{{ latest_loaded_version(['order_id']) }},

final as (

    select
        order_id,
        user_id,
        email,
        currency,
        order_status,
        amount,
        created_at,
        loaded_at,
        source_file,
        source_line
    from latest

)

select * from final

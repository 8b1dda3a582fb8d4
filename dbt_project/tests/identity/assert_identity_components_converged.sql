{#-
    Fails when the label propagation of int_identity__components stopped at
    var mos__identity_max_label_iterations with labels still changing: components may then be split.
    Raise the var (or look for a pathological graph) and rebuild.
-#}
select
    label_iterations,
    is_converged,
    changed_in_last_iteration
from {{ ref('int_identity__component_convergence') }}
where not is_converged

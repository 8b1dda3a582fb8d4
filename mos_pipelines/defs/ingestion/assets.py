"""One asset per landing source: landing files → ``raw.<source>`` (+ ``raw.quarantine``)."""

import dagster as dg

from mos_pipelines.defs._common import warehouse_asset
from mos_pipelines.defs.ingestion.metadata import load_metadata
from mos_pipelines.defs.resources import MosHome
from mos_pipelines.ingestion.contracts import SOURCES, Source
from mos_pipelines.ingestion.loader import SourceLoadResult, load_source, loaded_version
from mos_pipelines.warehouse import scalar

OWNER = "team:data-platform"


class LandingFolderMissing(dg.Failure):
    """The landing zone does not exist at all (as opposed to one source having no files)."""


def build_raw_asset(source: Source) -> dg.AssetsDefinition:
    """The ingestion asset for one landing source."""

    @warehouse_asset(
        key=["raw", source.raw_table],
        group="raw",
        owner=OWNER,
        description=(
            f"{source.description}\n\nLoads new files from `landing/{source.name}/` ({source.format}); "
            "each file once (ledger `ops.file_ledger` keyed by content hash). Rows that break the contract "
            "go to `raw.quarantine` with file, line and reason; fields outside the contract are kept in `_extra`."
        ),
    )
    def _raw_asset(context: dg.AssetExecutionContext, mos: MosHome) -> dg.MaterializeResult:
        if not mos.paths.landing_dir.is_dir():
            raise LandingFolderMissing(
                description=(
                    f"No landing folder at {mos.paths.landing_dir}. Generate a simulated world with "
                    "`mos generate`, or put your files under landing/<source>/ (see README)."
                )
            )

        def progress(done: int, total: int, name: str) -> None:
            if done == total or done % 10 == 0:
                context.log.info(f"{source.name}: {done}/{total} files ({name})")

        with mos.connect() as con:
            result: SourceLoadResult = load_source(con, source.name, mos.paths.landing_dir, progress)
            total_rows = scalar(con, f'select count(*) from raw."{source.raw_table}"')
            version = loaded_version(con, source.name)
        for f in result.with_status("unreadable"):
            context.log.error(f"Unreadable file landing/{f.source_file}: {f.error}")
        if result.ignored_files:
            context.log.warning(f"Ignored files that are not {source.format}: {result.ignored_files}")
        # the data version is the set of files loaded: a run that loads nothing new changes nothing downstream
        return dg.MaterializeResult(metadata=load_metadata(result, total_rows), data_version=dg.DataVersion(version))

    return _raw_asset


raw_assets = [build_raw_asset(source) for source in SOURCES.values()]

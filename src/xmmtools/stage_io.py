"""How a stage command reads its input and writes its output (through xmmtools.tables).

Two patterns cover every stage:

* :func:`run_rowwise` for row-independent stages (classify, photoz apply, sensitivity at
  positions): stream the input in chunks, resolve the stage's columns once, compute new
  columns per chunk, write each chunk; memory stays bounded whatever the input size.
* :func:`load_for_stage` + :func:`write_output` for stages that need the whole table at once
  (crossmatch, long-term variability).

A stage's science lives in functions that take arrays and return :class:`NewColumn` lists;
they never see a file name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from xmmtools import tables
from xmmtools.errors import DataError
from xmmtools.stages import StageSpec
from xmmtools.tables import NewColumn, Provenance


def default_output(input: str, stage: str) -> str:
    """``cat.fits`` -> ``cat_classify.fits`` beside the input; ``-`` stays ``-``."""
    if input == tables.STDIO:
        return tables.STDIO
    path, _ = tables.strip_hdu(input)
    folder, name = os.path.split(path)
    low = name.lower()
    for ext in sorted(tables.EXTENSIONS, key=len, reverse=True):
        if low.endswith(ext):
            return os.path.join(folder, f"{name[: -len(ext)]}_{stage}{name[-len(ext) :]}")
    raise DataError(f"{input}: unknown table format, cannot name the output; give -o")


@dataclass
class Columns:
    """Arrays of one chunk keyed by canonical 4XMM name (``cols["RA"]``)."""

    table: pa.Table
    mapping: Mapping[str, str]  # canonical -> actual
    #: file row of the chunk's first row (None: not known, e.g. a HATS partition), for errors
    row_offset: int | None = None

    def __contains__(self, name: str) -> bool:
        return name in self.mapping

    def actual(self, name: str) -> str:
        return self.mapping[name]

    def float(self, name: str) -> np.ndarray:
        return tables.to_numpy(self.table.column(self.mapping[name]), float)

    def bool(self, name: str) -> np.ndarray:
        return tables.to_numpy(self.table.column(self.mapping[name]), bool)

    def values(self, name: str) -> np.ndarray:
        return tables.to_numpy(self.table.column(self.mapping[name]), None)

    def __len__(self) -> int:
        return int(self.table.num_rows)


def run_rowwise(
    input: str,
    output: str | None,
    *,
    spec: StageSpec,
    compute: Callable[[Columns], Sequence[NewColumn]],
    parameters: Mapping[str, Any],
    user_map: Mapping[str, str] | None = None,
    overwrite: bool = False,
    chunk_rows: int | None = None,
    progress: bool = False,
    extra_inputs: Sequence[str] = (),
    extra_provenance: Mapping[str, Any] | None = None,
    replace: bool = False,
    engine: Any = None,
) -> tuple[str, int]:
    """Stream ``input`` through ``compute`` into ``output``; returns (output, rows).

    With a Dask ``engine`` (:mod:`xmmtools.engine`) the first chunk is computed here (it fixes
    the columns and the provenance) and every further partition on the cluster, with the same
    ``compute``; results are written in input order, so the output is the local engine's."""
    if engine is not None and engine.dask:
        return _run_rowwise_dask(
            input,
            output,
            spec=spec,
            compute=compute,
            parameters=parameters,
            user_map=user_map,
            overwrite=overwrite,
            chunk_rows=chunk_rows,
            extra_inputs=extra_inputs,
            extra_provenance=extra_provenance,
            replace=replace,
            engine=engine,
        )
    output = output or default_output(input, spec.name)
    tables.check_output(output, inputs=[input, *extra_inputs], overwrite=overwrite)
    chunks = tables.iter_table(input, None, chunk_rows=chunk_rows, progress=progress)
    first = next(chunks)
    mapping = spec.check(first.schema.names, source=input, user_map=user_map, types=tables.schema_kinds(first.schema))
    # the same dict object: a compute function may add to it on the first chunk
    step = Provenance(
        spec.name, parameters, [input, *extra_inputs], extra_provenance if extra_provenance is not None else {}
    )

    def outputs() -> Iterator[pa.Table]:
        offset = 0
        for chunk in _chain(first, chunks):
            if chunk.num_rows == 0:
                continue  # compute functions never see an empty chunk
            yield tables.add_columns(chunk, compute(Columns(chunk, mapping, offset)), replace=replace)
            offset += chunk.num_rows

    def counted() -> Iterator[pa.Table]:
        n = 0
        for out in outputs():
            n += out.num_rows
            yield out
        if n == 0:
            raise DataError(f"{input}: the table has no rows; nothing for {spec.name} to do")

    writer = tables.write_chunks(counted(), output, provenance=step, overwrite=overwrite, inputs=[input, *extra_inputs])
    return output, writer.rows


def _partitions(input: str, chunk_rows: int | None) -> Iterable[Any]:
    """The input's partitions: for a HATS catalogue, (reader, file, schema) of each pixel file
    (read by the worker); for a file, its row chunks (read here)."""
    if input.startswith("hats:"):
        from xmmtools.tables import hats

        schema = hats.table_schema(input)
        return ((hats.read_partition, f, schema) for f in hats.partition_files(input))
    return tables.iter_table(input, None, chunk_rows=chunk_rows)


def _run_rowwise_dask(
    input: str,
    output: str | None,
    *,
    spec: StageSpec,
    compute: Callable[[Columns], Sequence[NewColumn]],
    parameters: Mapping[str, Any],
    user_map: Mapping[str, str] | None,
    overwrite: bool,
    chunk_rows: int | None,
    extra_inputs: Sequence[str],
    extra_provenance: Mapping[str, Any] | None,
    replace: bool,
    engine: Any,
) -> tuple[str, int]:
    from xmmtools import engine as engines

    output = output or default_output(input, spec.name)
    tables.check_output(output, inputs=[input, *extra_inputs], overwrite=overwrite)
    parts = iter(_partitions(input, chunk_rows))

    def load(item: Any) -> pa.Table:
        return item[0](*item[1:]) if isinstance(item, tuple) else item

    def numbered(items: Iterable[Any]) -> Iterator[tuple[int | None, Any]]:
        """(file row of the first row, partition): known for a file's chunks (read here), not
        for HATS pixel files (read by the workers)."""
        offset = 0
        for item in items:
            if isinstance(item, tuple):
                yield None, item
            else:
                yield offset, item
                offset += item.num_rows

    parts = numbered(parts)
    try:
        first_offset, first_item = next(parts)
        first = load(first_item)
    except StopIteration:
        raise DataError(f"{input}: the table has no rows; nothing for {spec.name} to do") from None
    mapping = spec.check(first.schema.names, source=input, user_map=user_map, types=tables.schema_kinds(first.schema))
    extra = extra_provenance if extra_provenance is not None else {}

    def task(numbered_item: tuple[int | None, Any]) -> pa.Table | None:
        offset, item = numbered_item
        chunk = load(item)
        if chunk.num_rows == 0:
            return None  # compute functions never see an empty chunk
        return tables.add_columns(chunk, compute(Columns(chunk, mapping, offset)), replace=replace)

    with engines.session(engine) as client:
        head = task((first_offset, first))  # here: fills the provenance before the output is opened
        step = Provenance(spec.name, parameters, [input, *extra_inputs], extra)

        def outputs() -> Iterator[pa.Table]:
            n = 0
            for out in _chain(head, engines.map_ordered(client, task, parts)):
                if out is not None:
                    n += out.num_rows
                    yield out
            if n == 0:
                raise DataError(f"{input}: the table has no rows; nothing for {spec.name} to do")

        writer = tables.write_chunks(
            outputs(), output, provenance=step, overwrite=overwrite, inputs=[input, *extra_inputs]
        )
    return output, writer.rows


def _chain(first: Any, rest: Iterable[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def load_for_stage(
    input: str,
    spec: StageSpec,
    *,
    user_map: Mapping[str, str] | None = None,
    all_columns: bool = True,
    progress: bool = False,
) -> tuple[pa.Table, dict[str, str]]:
    """Read a whole table for a stage that needs every row at once.

    With ``all_columns=False`` only the stage's columns are read (the output then cannot keep
    the other input columns; use it for auxiliary tables such as counterpart catalogues).
    """
    if all_columns or input == tables.STDIO:
        t = tables.read_table(input, progress=progress)
        mapping = spec.check(t.schema.names, source=input, user_map=user_map, types=tables.schema_kinds(t.schema))
    else:
        info = tables.inspect_table(input)
        mapping = spec.check(info.schema.names, source=input, user_map=user_map, types=tables.schema_kinds(info.schema))
        t = tables.read_table(input, list(dict.fromkeys(mapping.values())), progress=progress)
    if t.num_rows == 0:
        raise DataError(f"{input}: the table has no rows; nothing for {spec.name} to do")
    return t, mapping


def write_output(
    table: pa.Table,
    output: str,
    *,
    stage: str,
    parameters: Mapping[str, Any],
    inputs: Sequence[str],
    overwrite: bool = False,
    extra_provenance: Mapping[str, Any] | None = None,
) -> None:
    tables.write_table(
        table,
        output,
        provenance=Provenance(stage, parameters, inputs, extra_provenance or {}),
        overwrite=overwrite,
        inputs=inputs,
    )

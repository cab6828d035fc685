"""Commits of a Delta table, read from its log and from its history (the online sync uses them)."""

from __future__ import annotations

from pathlib import Path

from fstore_spark.lakehouse.commits import commits_since, recent_commit_summaries


def test_commit_log_reads_the_same_commits_as_history(spark, tmp_path: Path) -> None:
    """The Delta log read agrees with the table's history commit by commit."""
    from delta.tables import DeltaTable

    path = str(tmp_path / "t")
    df = spark.range(20).selectExpr("cast(id as string) as k", "id as v")
    df.write.format("delta").option("delta.enableChangeDataFeed", "true").save(path)  # 0
    df.limit(5).write.format("delta").mode("append").save(path)  # 1: insert only
    DeltaTable.forPath(spark, path).delete("v = 3")  # 2: removes rows
    (  # 3: a replaceWhere that replaced nothing: insert only
        spark.range(100, 103)
        .selectExpr("cast(id as string) as k", "id as v")
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", "v >= 100")
        .save(path)
    )
    hist = recent_commit_summaries(spark, path, 50)
    assert [(c.version, c.removes) for c in hist] == [
        (3, False),
        (2, True),
        (1, False),
        (0, False),
    ]
    for since in range(4):
        tail = commits_since(spark, path, since, limit=50)
        assert tail is not None and tail.schema is not None  # plain Parquet files
        assert [c[:3] for c in tail.commits] == [h[:3] for h in hist if h[0] >= since]
    # not a version of the table: the history decides
    assert commits_since(spark, path, 4, limit=50) is None

    # the inserts' files, as listed in the log, hold exactly the feed's inserted rows
    tail = commits_since(spark, path, 0, limit=50)
    assert tail is not None and tail.schema is not None
    by_version = {c.version: c for c in tail.commits}
    assert by_version[0].files is None  # the first commit sets the metadata: never read so
    for v in (1, 3):
        files = [f"{path}/{f}" for f in by_version[v].files or ()]
        direct = spark.read.parquet(*files).select("k", "v")
        feed = (
            spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", v)
            .option("endingVersion", v)
            .load(path)
            .where("_change_type = 'insert'")
            .select("k", "v")
        )
        assert sorted(direct.collect()) == sorted(feed.collect()) and direct.count() > 0

    # column mapping: the files' column names are not the table's, so no schema comes back
    spark.sql(
        f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name', "
        "'delta.minReaderVersion' = '2', 'delta.minWriterVersion' = '5')"
    )
    tail = commits_since(spark, path, 3, limit=50)
    assert tail is not None and tail.schema is None
    assert tail.commits[0].removes and tail.commits[0].files is None

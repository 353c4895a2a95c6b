
-- Fan-out search over a partitioned table: see README, "Scaling out" --------

-- The text of a k-NN query over every leaf partition of a partitioned table
-- (typically foreign tables on other servers, through postgres_fdw): a
-- UNION ALL of one "ORDER BY col op $1 LIMIT k" per partition, inside a
-- MATERIALIZED CTE, then the k nearest of those.  postgres_fdw pushes each
-- branch's ORDER BY and LIMIT to its shard, so a shard sends k rows; and as
-- the CTE asks no order of the UNION ALL, the planner makes it a plain
-- Append, whose foreign scans run concurrently when their servers are
-- async_capable (a Merge Append, which the planner picks for the same
-- UNION ALL without the CTE, reads its children one after another).  $1
-- is the query vector.  The columns are the parent's (or those named),
-- then distance.
CREATE FUNCTION hnsw_fanout_sql(parent regclass, col name, k integer,
	op text DEFAULT '<->', columns name[] DEFAULT NULL)
	RETURNS text
	LANGUAGE plpgsql STABLE PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	AS $$
DECLARE
	coltype oid;
	opr text;
	outcols text;
	bad name;
	branches text;
BEGIN
	IF k IS NULL OR k < 1 THEN
		RAISE EXCEPTION 'k must be at least 1'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF (SELECT c.relkind FROM pg_class c WHERE c.oid = parent) IS DISTINCT FROM 'p' THEN
		RAISE EXCEPTION '"%" is not a partitioned table', parent
			USING ERRCODE = 'wrong_object_type';
	END IF;

	SELECT a.atttypid INTO coltype
	FROM pg_attribute a
	WHERE a.attrelid = parent AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, parent
			USING ERRCODE = 'undefined_column';
	END IF;

	-- A distance: a binary operator on the column's type that yields
	-- float8, written schema-qualified so that the text means the same
	-- under any search_path.
	SELECT format('OPERATOR(%I.%s)', n.nspname, o.oprname) INTO opr
	FROM pg_operator o
	JOIN pg_namespace n ON n.oid = o.oprnamespace
	WHERE o.oprname = op AND o.oprleft = coltype AND o.oprright = coltype
	  AND o.oprresult = 'float8'::regtype
	ORDER BY pg_operator_is_visible(o.oid) DESC, n.nspname
	LIMIT 1;
	IF opr IS NULL THEN
		RAISE EXCEPTION 'no distance operator % for type %', op, format_type(coltype, NULL)
			USING ERRCODE = 'undefined_function',
				  HINT = 'A distance operator takes two values of the column''s type and returns double precision.';
	END IF;

	IF columns IS NULL THEN
		SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum) INTO outcols
		FROM pg_attribute a
		WHERE a.attrelid = parent AND a.attnum > 0 AND NOT a.attisdropped;
		IF EXISTS (SELECT FROM pg_attribute a
				   WHERE a.attrelid = parent AND a.attname = 'distance'
					 AND a.attnum > 0 AND NOT a.attisdropped) THEN
			RAISE EXCEPTION 'relation "%" has a column named "distance"', parent
				USING ERRCODE = 'duplicate_column',
					  HINT = 'Name the columns to return in columns, without "distance".';
		END IF;
	ELSE
		IF coalesce(cardinality(columns), 0) = 0 THEN
			RAISE EXCEPTION 'columns must name at least one column'
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		SELECT c INTO bad FROM unnest(columns) c
		WHERE c IS NULL OR c = 'distance' OR NOT EXISTS (
			SELECT FROM pg_attribute a
			WHERE a.attrelid = parent AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped)
		LIMIT 1;
		IF FOUND THEN
			IF bad = 'distance' THEN
				RAISE EXCEPTION 'the result''s column "distance" is the distance'
					USING ERRCODE = 'duplicate_column';
			END IF;
			RAISE EXCEPTION 'column "%" of relation "%" does not exist', bad, parent
				USING ERRCODE = 'undefined_column';
		END IF;
		SELECT string_agg(format('%I', c), ', ' ORDER BY i) INTO outcols
		FROM unnest(columns) WITH ORDINALITY AS u(c, i);
	END IF;

	-- One branch per leaf partition, in the order of their names.
	SELECT string_agg(format('  (SELECT %s, %I %s $1 AS distance FROM %I.%I ORDER BY distance LIMIT %s)',
							 outcols, col, opr, n.nspname, c.relname, k),
					  E'\n  UNION ALL\n' ORDER BY n.nspname, c.relname) INTO branches
	FROM pg_partition_tree(parent) t
	JOIN pg_class c ON c.oid = t.relid
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE t.isleaf;
	IF branches IS NULL THEN
		RAISE EXCEPTION 'partitioned table "%" has no partitions', parent
			USING ERRCODE = 'wrong_object_type';
	END IF;

	RETURN format(E'WITH hnsw_fanout AS MATERIALIZED (\n%s\n)\nSELECT %s, distance FROM hnsw_fanout ORDER BY distance LIMIT %s',
				  branches, outcols, k);
END
$$;

COMMENT ON FUNCTION hnsw_fanout_sql(regclass, name, integer, text, name[]) IS
	'the text of a k-NN query ($1: the query vector) that asks each leaf partition for its k nearest rows, then keeps the k nearest';

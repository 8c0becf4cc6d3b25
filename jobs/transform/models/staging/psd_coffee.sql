MODEL (
  name staging.psd_coffee,
  kind FULL,
  description 'Typed rows of the newest landed PSD coffee release, as USDA ships them.',
  grain (commodity_code, country_code, market_year, attribute_id),
  audits (
    not_null(columns := (commodity_code, country_code, country_name, market_year, attribute_id, value, source_file)),
    number_of_rows(threshold := 1000),
  )
);

SELECT
  Commodity_Code::TEXT AS commodity_code,
  Commodity_Description::TEXT AS commodity,
  Country_Code::TEXT AS country_code,
  Country_Name::TEXT AS country_name,
  Market_Year::INT AS market_year,
  Calendar_Year::INT AS calendar_year,
  "Month"::INT AS revision_month,
  Attribute_ID::INT AS attribute_id,
  Attribute_Description::TEXT AS attribute,
  Unit_Description::TEXT AS unit,
  "Value"::DECIMAL(18, 4) AS value,
  filename::TEXT AS source_file
FROM READ_CSV(
  @psd_release_file,
  header = TRUE,
  compression = 'gzip',
  filename = TRUE,
  all_varchar = TRUE
)

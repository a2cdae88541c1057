// Rules of the kafka area (being written).
{
  rules+:: {
    kafka: { groups: [] },
  },
}

pub(crate) use crate::stack::TaskStack as DiagFlags;

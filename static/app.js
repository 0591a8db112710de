// page entry
